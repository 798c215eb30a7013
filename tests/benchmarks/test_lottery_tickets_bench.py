"""benchmarks/lottery_tickets.py --smoke: every variant of two seeds, the paired statistics and the verdict
computed from them, a table rebuilt from the file; --curve on the validation split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lottery_tickets as bench
import pytest
from harness import main, parse, sample


def test_lottery_ticket_benchmark_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "lt.json"
    argv = ["--smoke", "--seeds", "2", "--late-rewind", "1", "--threads", "1", "--out", str(out_json)]
    assert main(bench.LotteryTickets(), argv) == 0
    out = capsys.readouterr().out
    assert "estimated" in out and "Verdict" in out
    report = json.loads(out_json.read_text())
    assert report["config"]["rounds"] == 2 and report["config"]["seeds"] == [0, 1]
    # every setting cost_quality and stability compare before reusing this file is recorded
    a = argparse.Namespace(**{**vars(parse(bench.LotteryTickets(), argv)), "seed0": 0})
    recorded = sample.record(a, report["config"]["test_images_per_set"])
    assert {k: report["config"].get(k) for k in recorded} == recorded
    assert report["config"]["web_degradation"]["name"] == "jpeg"
    for one in report["runs"]:
        rounds = one["rounds"]
        assert sorted(int(r) for r in rounds) == [0, 1, 2]
        assert list(rounds["0"]["variants"]) == ["dense"]
        for r in ("1", "2"):
            assert set(rounds[r]["variants"]) == {"imp_init", "imp_step", "random_reinit", "random_prune"}
            for result in rounds[r]["variants"].values():
                assert len(result["psnr"]) == 6 and all(v == v for v in result["psnr"].values())  # 6 sets, no NaN
                assert result["input_psnr"] == rounds["0"]["variants"]["dense"]["input_psnr"]  # one reference
    summary = report["summary"]
    last = summary["rounds"][-1]
    assert last["density"] == pytest.approx(0.64, abs=1e-3)
    seeds = [one["rounds"]["2"]["variants"] for one in report["runs"]]
    diffs = [s["imp_init"]["mean_psnr"] - s["random_reinit"]["mean_psnr"] for s in seeds]
    paired = last["paired"]["imp_init - random_reinit"]["mean"]
    assert paired["mean"] == pytest.approx(sum(diffs) / 2)
    assert paired["low"] <= paired["mean"] <= paired["high"]  # a 95% t-interval from two seeds
    assert summary["input"]["mean_psnr"] == pytest.approx(sum(summary["input"]["psnr"].values()) / 6)
    # The dense target is judged at the last round's density (0.64 after 2 rounds), a paired difference.
    vs_dense = report["verdict"]["ticket_vs_dense"]
    assert "0.640" in vs_dense["target"] and vs_dense["status"] in ("pass", "fail")
    assert vs_dense["difference"] == last["paired"]["imp_init - dense"]["mean"]
    text = out_json.with_suffix(".md").read_text()
    assert "degraded input" in text and "95% t-interval" in text
    assert "### imp_step: PSNR per test set" in text  # the late-rewind line has its own table
    assert out_json.with_suffix(".png").stat().st_size > 0
    # a seed is a unit: a rerun trains nothing, and the table is rebuilt from the file alone
    assert main(bench.LotteryTickets(), argv) == 0 and "0 unit(s) to run" in capsys.readouterr().out
    out_json.with_suffix(".md").unlink()
    assert main(bench.LotteryTickets(), ["--report-only", "--smoke", "--out", str(out_json)]) == 0
    assert out_json.with_suffix(".md").read_text() == text


def test_the_steps_curve_trains_the_dense_network_per_budget(tmp_path: Path) -> None:
    out = tmp_path / "curve.json"
    assert main(bench.Curve(), ["--curve", "--smoke", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert report["config"]["web_degradation"]["name"] == "jpeg" and "identity_pairs" in report["config"]
    assert [r["steps"] for r in rows] == [2, 4] and report["config"]["seeds"] == [0]  # it trains seed 0 alone
    for r in rows:
        assert set(r["gains"]) == {"denoise_15", "denoise_25", "denoise_50", "derain", "dehaze", "web"}
        assert r["mean_gain"] == pytest.approx(sum(r["gains"].values()) / 6)
    assert "| 4 |" in out.with_suffix(".md").read_text() and out.with_suffix(".png").stat().st_size > 0


def test_the_steps_curve_refuses_several_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(bench.Curve(), ["--curve", "--smoke", "--seeds", "3"])
    assert e.value.code == 2 and "--curve trains one seed" in capsys.readouterr().err
