"""benchmarks/cost_quality.py: the verdict rule, merging sittings, and one smoke run end to end (shared by
the tests that resume it: another --out on the same runs, and cells reused from another training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cost_quality as cq
import pytest
from harness import ROOT, main, merge


def _d(mean: float, low: float, high: float, n: int = 3) -> dict[str, float]:
    return {"mean": mean, "low": low, "high": high, "n": n, "std": 0.1}


def _row(**variants: tuple[float, tuple[float, float, float]]) -> dict[str, Any]:
    """variants: name -> (steps, (paired mean, low, high)) on both the mean and the denoising mean."""
    row: dict[str, Any] = {"variants": {"imp": {"n": 3, "steps": {"mean": 6600.0}}}, "paired": {}}
    for name, (steps, d) in variants.items():
        row["variants"][name] = {"n": 3, "steps": {"mean": steps}}
        row["paired"][name] = {"mean": _d(*d), "denoise": _d(*d)}
    return row


def test_verdict_picks_the_cheapest_method_within_the_tolerance() -> None:
    row = _row(
        oneshot=(1200.0, (-0.05, -0.3, 0.2)),  # close, interval reaches 0, 18% of the steps
        gmp=(600.0, (-0.02, -0.2, 0.15)),  # closer and cheaper: the pick
        snip=(600.0, (-0.5, -0.9, -0.1)),  # cheap but worse
    )
    assert cq.verdict(row, 3) == {"tolerance_db": 0.1, "cost_share": 0.25, "mean": "gmp", "denoise": "gmp"}
    row["paired"]["gmp"]["mean"] = _d(-0.15, -0.3, 0.0)  # beyond 0.1 dB on the mean, though the interval holds 0
    assert cq.verdict(row, 3)["mean"] == "oneshot"
    row["variants"]["oneshot"]["steps"]["mean"] = 2000.0  # over a quarter of IMP's 6600 steps
    assert cq.verdict(row, 3)["mean"] is None


def test_verdict_skips_controls_and_unfinished_seeds() -> None:
    row = _row(**{"snip+shuffle": (600.0, (0.0, -0.1, 0.1)), "gmp": (600.0, (0.0, -0.1, 0.1))})
    row["variants"]["gmp"]["n"] = 2
    assert cq.verdict(row, 3)["mean"] is None


def test_merge_adds_other_sittings_cells_in_the_variants_order(tmp_path: Path) -> None:
    def report(methods: list[str], results: dict[str, Any], steps: int = 3) -> dict[str, Any]:
        return {"config": {"steps": steps, "methods": methods, "seeds": [0]}, "results": results}

    mine = report(["imp", "snip"], {"0": {"imp": {"0.2621": {"x": 1}}, "snip": {"0.2621": {"x": 2}}}})
    other = tmp_path / "other.json"
    other.write_text(json.dumps(report(["imp", "oneshot"], {"0": {"oneshot": {"0.2621": {"x": 3}}}})))
    merge(cq.CostQuality(), mine, [other])
    assert mine["results"]["0"] == {
        "imp": {"0.2621": {"x": 1}},
        "snip": {"0.2621": {"x": 2}},
        "oneshot": {"0.2621": {"x": 3}},
    }
    assert mine["config"]["methods"] == ["imp", "oneshot", "snip"]  # the benchmark's order, not the files'


def test_a_round_based_run_is_continued_to_the_rounds_another_sitting_took_it(tmp_path: Path) -> None:
    from harness.sample import rounds_taken

    run = tmp_path / "seed0" / "imp"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"rounds": 10, "method": "imp"}))
    assert rounds_taken(run, 6) == 10 and rounds_taken(run, 12) == 12 and rounds_taken(tmp_path / "none", 6) == 6


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """imp and oneshot at density 0.64 (2 rounds), 3 steps a training: one sitting."""
    tmp = tmp_path_factory.mktemp("cq")
    out, work = tmp / "cq.json", tmp / "work"
    assert main(cq.CostQuality(), ["--smoke", "--methods", "oneshot", "--out", str(out), "--work", str(work)]) == 0
    return out, work


def test_smoke_run_trains_every_variant_and_resumes_to_nothing(smoke: tuple[Path, Path], capsys: Any) -> None:
    out, work = smoke
    report = json.loads(out.read_text())
    cells = report["results"]["0"]
    assert set(cells) == {"imp", "oneshot", "dense"}
    for v in ("imp", "oneshot"):
        c = cells[v]["0.6400"]
        assert c["density"] == pytest.approx(0.64, abs=1e-3)
        assert len(c["psnr"]) == 6 and all(x == x for x in c["psnr"].values())
        assert c["input_psnr"] == cells["dense"]["dense"]["input_psnr"]  # one degraded reference
        assert (ROOT / c["source"]).is_dir() and not Path(c["source"]).is_absolute()
    assert cells["imp"]["0.6400"]["cost"]["trainings"] == 3 and cells["oneshot"]["0.6400"]["cost"]["trainings"] == 2
    row = report["summary"]["densities"][0]
    assert set(row["paired"]) == {"oneshot"} and "verdict" in row
    d = row["paired"]["oneshot"]["mean"]
    assert d["mean"] == pytest.approx(cells["oneshot"]["0.6400"]["mean_psnr"] - cells["imp"]["0.6400"]["mean_psnr"])
    assert report["dense_check"] == 0.0  # oneshot's round 0 is imp's dense round, score for score
    assert "Cheapest method" in out.with_suffix(".md").read_text() and out.with_suffix(".png").stat().st_size > 0
    assert report["provenance"]["command"].startswith("python benchmarks/cost_quality.py --smoke")
    capsys.readouterr()
    assert main(cq.CostQuality(), ["--smoke", "--methods", "oneshot", "--out", str(out), "--work", str(work)]) == 0
    assert "0 unit(s) to run" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["provenance"]["sittings"]) == 2


def test_a_new_out_sharing_work_reads_imp_runs_taken_to_more_rounds(smoke: tuple[Path, Path], tmp_path: Path) -> None:
    """A second sitting with its own --out and the first one's --work (how the parallel sittings run)."""
    out, work = smoke
    other = tmp_path / "b.json"
    argv = ["--smoke", "--methods", "imp", "--rounds", "1,2", "--reuse", "none", "--work", str(work)]
    assert main(cq.CostQuality(), [*argv, "--out", str(other)]) == 0
    b = json.loads(other.read_text())["results"]["0"]["imp"]
    assert set(b) == {"0.8000", "0.6400"}  # the run the first sitting took to round 2, read at both
    assert b["0.6400"] == json.loads(out.read_text())["results"]["0"]["imp"]["0.6400"]  # nothing retrained


def test_cells_reused_from_another_training_are_replaced_and_the_dense_check_redone(
    smoke: tuple[Path, Path], tmp_path: Path, capsys: Any
) -> None:
    """A results file whose IMP came from lottery_tickets (dense round 0.69 dB away): the next sitting
    drops those cells, takes IMP from its own runs and checks every oneshot run against that dense round."""
    first, work = smoke
    report = json.loads(first.read_text())
    own = dict(report["results"]["0"]["imp"]["0.6400"])
    for variant in ("imp", "dense"):  # what a sitting that reused lottery_tickets' IMP left behind
        for c in report["results"]["0"][variant].values():
            c["source"] = "benchmarks/results/lottery_tickets.json (seed 0)"
            c["mean_psnr"] += 1.0
    report["dense_check"] = 0.69
    out = tmp_path / "cq.json"
    out.write_text(json.dumps(report))
    capsys.readouterr()
    argv = ["--smoke", "--methods", "oneshot", "--reuse", "none", "--out", str(out), "--work", str(work)]
    assert main(cq.CostQuality(), argv) == 0
    report = json.loads(out.read_text())
    assert report["stale_reuse"] == {"dense_check": 0.69, "cells_dropped": 2}
    assert report["results"]["0"]["imp"]["0.6400"] == own  # read back from its own run, nothing retrained
    assert report["dense_check"] == 0.0 and "1 unit(s) to run (1 imp)" in capsys.readouterr().out
    md = out.with_suffix(".md").read_text()
    assert "trained here (--reuse none)" in md and "by up to 0.69 dB on a set" in md


def test_reused_imp_cells_count_no_tensors_as_unknown_not_none(smoke: tuple[Path, Path], tmp_path: Path) -> None:
    """IMP cells reused from lottery_tickets carry no masks: the summary says unknown (null), not 0 of 0."""
    report = json.loads(smoke[0].read_text())
    for c in report["results"]["0"]["imp"].values():  # what a reused cell holds
        c.pop("tensors"), c.pop("empty_tensors")
    out = tmp_path / "cq.json"
    out.write_text(json.dumps(report))
    assert main(cq.CostQuality(), ["--report-only", "--smoke", "--out", str(out)]) == 0
    variants = json.loads(out.read_text())["summary"]["densities"][0]["variants"]
    assert variants["imp"]["empty_tensors"] is None and variants["imp"]["tensors"] is None
    assert isinstance(variants["oneshot"]["empty_tensors"], int) and variants["oneshot"]["tensors"] > 0
