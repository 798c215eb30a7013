"""benchmarks/cost_quality.py: the verdict rule, merging sittings, and a smoke run end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("cost_quality", ROOT / "benchmarks" / "cost_quality.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cost_quality"] = mod  # dataclasses look their module up while the file executes
    spec.loader.exec_module(mod)
    return mod


cq = _module()


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


def _report(methods: list[str], results: dict[str, Any], steps: int = 3) -> dict[str, Any]:
    return {"config": {"steps": steps, "methods": methods, "seeds": [0]}, "results": results}


def test_merge_adds_other_sittings_cells_and_refuses_another_configuration(tmp_path: Path) -> None:
    mine = _report(["imp", "oneshot"], {"0": {"imp": {"0.2621": {"x": 1}}, "oneshot": {"0.2621": {"x": 2}}}})
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_report(["imp", "snip"], {"0": {"snip": {"0.2621": {"x": 3}}}})))
    cq.merge(mine, [other])
    assert mine["results"]["0"] == {
        "imp": {"0.2621": {"x": 1}},
        "oneshot": {"0.2621": {"x": 2}},
        "snip": {"0.2621": {"x": 3}},
    }
    assert mine["config"]["methods"] == ["imp", "oneshot", "snip"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_report(["snip"], {}, steps=600)))
    with pytest.raises(ValueError, match="steps"):
        cq.merge(mine, [bad])
    with pytest.raises(ValueError, match="no such file"):
        cq.merge(mine, [tmp_path / "missing.json"])


def test_smoke_run_trains_every_variant_and_resumes_to_nothing(tmp_path: Path) -> None:
    out = tmp_path / "cq.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cost_quality.py"), "--smoke", "--methods", "oneshot"]
    cmd += ["--threads", "1", "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(out.read_text())
    cells = report["results"]["0"]
    assert set(cells) == {"imp", "oneshot", "dense"}
    for v in ("imp", "oneshot"):
        c = cells[v]["0.6400"]
        assert c["density"] == pytest.approx(0.64, abs=1e-3)
        assert len(c["psnr"]) == 6 and all(x == x for x in c["psnr"].values())
        assert c["input_psnr"] == cells["dense"]["dense"]["input_psnr"]  # one degraded reference
    assert cells["imp"]["0.6400"]["cost"]["trainings"] == 3 and cells["oneshot"]["0.6400"]["cost"]["trainings"] == 2
    row = report["summary"]["densities"][0]
    assert set(row["paired"]) == {"oneshot"} and "verdict" in row
    assert "Cheapest method" in out.with_suffix(".md").read_text() and out.with_suffix(".png").stat().st_size > 0
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert again.returncode == 0 and "0 variant(s) to run" in again.stdout


def test_a_round_based_job_continues_a_run_another_sitting_took_further(tmp_path: Path) -> None:
    run = tmp_path / "seed0" / "imp"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"rounds": 10, "method": "imp"}))
    assert cq.continued(cq.Job(0, "imp", 6), run).rounds == 10  # not reopened with fewer rounds
    assert cq.continued(cq.Job(0, "imp", 12), run).rounds == 12  # a larger --rounds still continues it
    assert cq.continued(cq.Job(0, "imp", 6), tmp_path / "none").rounds == 6
    one = tmp_path / "seed0" / "oneshot-0.2621"
    one.mkdir()
    (one / "config.json").write_text(json.dumps({"rounds": None, "target_density": 0.2621}))
    assert cq.continued(cq.Job(0, "oneshot", 6), one).rounds == 6


def test_a_new_out_sharing_work_reads_imp_runs_taken_to_more_rounds(tmp_path: Path) -> None:
    """A second sitting with its own --out and the first one's --work (how the parallel sittings run)."""
    work = tmp_path / "work"
    base = [sys.executable, str(ROOT / "benchmarks" / "cost_quality.py"), "--smoke", "--methods", "imp"]
    base += ["--rounds", "1,2", "--reuse", "none", "--threads", "1", "--work", str(work)]
    first = subprocess.run([*base, "--out", str(tmp_path / "a.json")], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run([*base, "--out", str(tmp_path / "b.json")], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text())["results"]["0"]["imp"] for n in "ab")
    assert set(b) == {"0.8000", "0.6400"} and b == a  # read from the finished run, nothing retrained


def test_cells_reused_from_another_training_are_replaced_and_the_dense_check_redone(tmp_path: Path) -> None:
    """A results file whose IMP came from lottery_tickets (dense round 0.69 dB away): the next sitting
    drops those cells, takes IMP from its own runs and checks every oneshot run against that dense round."""
    out, work = tmp_path / "cq.json", tmp_path / "work"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cost_quality.py"), "--smoke", "--methods", "oneshot"]
    cmd += ["--threads", "1", "--out", str(out), "--work", str(work)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["dense_check"] == 0.0  # oneshot's round 0 is imp's dense round, score for score
    own = dict(report["results"]["0"]["imp"]["0.6400"])  # a copy: the cells are edited below
    for variant in ("imp", "dense"):  # what a sitting that reused lottery_tickets' IMP left behind
        for c in report["results"]["0"][variant].values():
            c["source"] = "benchmarks/results/lottery_tickets.json (seed 0)"
            c["mean_psnr"] += 1.0
    report["dense_check"] = 0.69
    out.write_text(json.dumps(report))
    again = subprocess.run([*cmd, "--reuse", "none"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["stale_reuse"] == {"dense_check": 0.69, "cells_dropped": 2}
    assert report["results"]["0"]["imp"]["0.6400"] == own  # read back from its own run, nothing retrained
    assert report["dense_check"] == 0.0 and "1 variant(s) to run" in again.stdout
    md = out.with_suffix(".md").read_text()
    assert "trained here (--reuse none)" in md and "by up to 0.69 dB on a set" in md
