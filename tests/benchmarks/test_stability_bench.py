"""benchmarks/stability.py --smoke: every (network, k) cell measured, consistent, and a rerun trains nothing."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import harness.units
import pytest
import stability as bench
from harness import ROOT, main, parse

from lotteryir.analysis import psnr_barrier
from lotteryir.runs import PruningRun


def test_smoke_cells_consistency_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, work = tmp_path / "st.json", tmp_path / "work"
    argv = ["--smoke", "--out", str(out), "--work", str(work)]
    assert main(bench.Stability(), argv) == 0
    report = json.loads(out.read_text())
    c = report["config"]
    assert (c["networks"], c["rewind_steps"], c["imp_rounds"]) == ([0, 2], [0, 2], 2)
    assert (c["test_images_per_set"], c["path_images_per_set"], c["points"]) == (2, 1, 11)
    threshold = c["threshold"]
    res = report["results"]["0"]
    assert set(res["imp"]["cells"]) == {"0", "2"} and (ROOT / res["imp"]["source"]).is_dir()

    for r in ("0", "2"):
        barriers = {}
        for k in (0, 2):
            e = res["stability"][r][str(k)]
            assert e["steps"] == 4 - k  # the copies train the round's length minus k
            assert len(e["alphas"]) == 11 and len(e["psnr"]) == 6
            assert all(math.isfinite(v) for curve in e["psnr"].values() for v in curve)
            for b in [e["mean_barrier"], *e["barrier"].values()]:
                assert math.isfinite(b) and b >= 0
            assert e["mean_barrier"] == pytest.approx(psnr_barrier(e["mean_psnr"]))
            assert e["density"] == pytest.approx(1.0 if r == "0" else 0.64, abs=1e-3)
            barriers[k] = e["mean_barrier"]
        stable = [k for k in sorted(barriers) if barriers[k] <= threshold]
        row = next(x for x in report["summary"]["networks"] if str(x["round"]) == r)
        assert row["stable_per_seed"]["0"] == (stable[0] if stable else None)

    late = res["late"]
    stable = [k for k in (0, 2) if res["stability"]["2"][str(k)]["mean_barrier"] <= threshold]
    assert late["k"] == (stable[0] if stable else 2) and late["stable"] == bool(stable)
    assert math.isfinite(late["mean_psnr"])
    if late["k"] == 0:  # stable at init: the late ticket is the run's own round 2
        assert late["psnr"] == res["imp"]["cells"]["2"]["psnr"] and not late["trained"]
    summary = report["summary"]["late"]
    assert set(summary["late_minus_init"]) == {"mean", *res["imp"]["cells"]["2"]["psnr"]}
    md = out.with_suffix(".md").read_text()
    assert "degraded input" in md and "Verdict" in md
    assert out.with_suffix(".png").stat().st_size > 0

    # A second invocation finds every unit finished: nothing trains, the run is untouched.
    history = (work / "seed0" / "imp" / "history.jsonl").read_bytes()

    def boom(call: tuple) -> dict:
        raise AssertionError(f"a finished benchmark ran {call[0].__name__} again")

    monkeypatch.setattr(harness.units, "invoke", boom)
    assert main(bench.Stability(), argv) == 0
    assert (work / "seed0" / "imp" / "history.jsonl").read_bytes() == history
    assert json.loads(out.read_text())["results"] == report["results"]
    monkeypatch.undo()

    # The late ticket's pairing: retrained from k = 0 it is the run's round 2, score for score.
    again = bench.retrain_ticket(str(work / "seed0" / "imp"), 2, 0)
    assert again["psnr"] == res["imp"]["cells"]["2"]["psnr"]

    # Random reinit trained here (the smoke settings are not lottery_tickets'): the round-2 mask on a
    # fresh draw, in the comparison beside the ticket.
    reinit = res["reinit"]
    assert reinit["trained"] and reinit["density"] == pytest.approx(res["imp"]["cells"]["2"]["density"])
    assert reinit["psnr"] != res["imp"]["cells"]["2"]["psnr"] and math.isfinite(reinit["mean_psnr"])
    assert set(summary["init_minus_reinit"]) == set(summary["late_minus_init"])
    assert "trained here as the run's random_reinit control (seeds 0)" in md


def test_the_reinit_unit_is_the_runs_own_random_reinit_control(tmp_path: Path) -> None:
    """Trained from a finished run, it scores what ``--controls random_reinit`` scored in that run."""
    a = parse(bench.Stability(), ["--smoke", "--out", str(tmp_path / "st.json")])
    config = dataclasses.replace(bench.Stability().run_config(a, 0), controls=["random_reinit"])
    history = PruningRun(tmp_path / "run", config).run()
    control = history[-1]["controls"]["random_reinit"]
    got = bench.reinit_unit(str(tmp_path / "run"), history[-1]["round"])
    assert got["psnr"] == {k: v["psnr"] for k, v in control["eval"].items()}
    assert got["mean_psnr"] == control["mean_psnr"]


def test_reused_random_reinit_is_dropped_when_the_dense_round_differs() -> None:
    dense = {"noise": 30.0, "rain": 28.0}

    def report(theirs: dict[str, float]) -> dict[str, Any]:
        return {
            "reuse": {"source": "x/lottery_tickets.json", "reused": True, "summary": "from lottery_tickets.json"},
            "reinit": {"0": {"psnr": {}, "mean_psnr": 27.0, "input_psnr": {}, "dense_psnr": theirs}},
            "results": {"0": {"imp": {"cells": {"0": {"psnr": dense}}}}},
        }

    same = report(dict(dense))
    bench.check_reinit(same)
    assert same["reinit"] and same["reuse"]["reused"]
    other = report({"noise": 30.0, "rain": 28.5})
    bench.check_reinit(other)
    assert other["reinit"] == {} and not other["reuse"]["reused"]
    assert other["reuse"]["dense_check"] == pytest.approx(0.5) and "0.50 dB" in other["reuse"]["summary"]
    unrecorded = report({})  # an old lottery_tickets file without the dense scores: not checked, not reused
    bench.check_reinit(unrecorded)
    assert unrecorded["reinit"] == {}


def test_the_verdict_says_what_late_rewinding_does_to_the_lead_over_random_reinit() -> None:
    def diff(mean: float, low: float, high: float) -> dict[str, Any]:
        return {"mean": {"mean": mean, "std": 0.1, "low": low, "high": high, "n": 3}}

    late = {
        "k_per_seed": {"0": 12, "1": 60},
        "late_minus_init": diff(-0.07, -0.24, 0.11),
        "init_minus_reinit": diff(0.58, 0.41, 0.74),
        "late_minus_reinit": diff(0.51, 0.36, 0.65),
    }
    text = bench.verdict(late)
    assert "no difference the seeds resolve" in text
    assert "does not change the ticket's lead over random reinit beyond the noise" in text
    assert "already beats random reinit" in text
    better = {**late, "late_minus_init": diff(0.4, 0.2, 0.6), "init_minus_reinit": diff(0.05, -0.2, 0.3)}
    text = bench.verdict(better)
    assert "late rewinding improves the ticket" in text and "widens the ticket's lead" in text
    assert "does not beat random reinit" in text
    worse = {**late, "late_minus_init": diff(-0.4, -0.6, -0.2)}
    assert "shrinks the ticket's lead" in bench.verdict(worse)
