"""benchmarks/task_tickets.py --smoke: the overlap matrix, the PSNR cells and the resume, checked on its JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import task_tickets as bench
from harness import ROOT, main, parse

from lotteryir.pruning import Mask
from lotteryir.runs import RunLayout


def expected_iou(a: Mask, b: Mask) -> float:
    """Random masks with each tensor's densities: E[inter] = n da db, E[union] = n (da + db - da db), summed."""
    inter = union = 0.0
    for k in a:
        n = a[k].numel()
        da, db = a[k].float().mean().item(), b[k].float().mean().item()
        inter += n * da * db
        union += n * (da + db - da * db)
    return inter / union


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tickets on denoising, on deraining and on all tasks (3 steps a training): one sitting."""
    out = tmp_path_factory.mktemp("tt") / "tt.json"
    assert main(bench.TaskTickets(), ["--smoke", "--out", str(out)]) == 0
    return out


@pytest.mark.filterwarnings("ignore")
def test_smoke_json_and_resume(smoke: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = smoke
    report = json.loads(out.read_text())
    s = report["summary"]
    names = ["denoise", "derain", "all"]
    assert s["tickets"] == names
    res = report["results"]["0"]
    for a in names:
        assert abs(res[a]["density"] - 0.107) < 0.01
        for b in names:
            x, y = s["overlap"][a][b], s["overlap"][b][a]
            assert 0.0 <= x["iou"]["mean"] <= 1.0
            assert x["iou"]["mean"] == y["iou"]["mean"] and x["random_iou"]["mean"] == y["random_iou"]["mean"]
            ma = Mask.load(RunLayout(ROOT / res[a]["source"]).mask(res[a]["round"]))
            mb = Mask.load(RunLayout(ROOT / res[b]["source"]).mask(res[b]["round"]))
            assert x["random_iou"]["mean"] == pytest.approx(expected_iou(ma, mb), rel=1e-6)
            assert x["ratio"] == pytest.approx(x["iou"]["mean"] / x["random_iou"]["mean"])
        assert s["overlap"][a][a]["iou"]["mean"] == 1.0
        empty = [k for k in ma if not bool(ma[k].any())]  # the tensors the ticket pruned to nothing
        assert res[a]["empty_tensors"] == empty and res[a]["tensors"] == len(ma)
    if any(res[a]["empty_tensors"] for a in names):
        assert "tensors pruned to nothing" in out.with_suffix(".md").read_text()
    assert set(s["psnr"]) == {"denoise", "derain"}
    assert s["psnr"]["denoise"]["sets"] == [f"denoise_{n}/sample" for n in (15, 25, 50)]
    assert set(res["derain"]["psnr"]) == {"derain/sample"}
    assert len(res["all"]["psnr"]) == 6  # the all-in-one ticket is scored on every set
    for x in s["psnr"].values():
        for v in (x["task"]["mean"], x["all"]["mean"], x["input"], x["diff"]["mean"]):
            assert math.isfinite(v)
        assert x["diff"]["mean"] == pytest.approx(x["task"]["mean"] - x["all"]["mean"])
        assert x["served"] == (x["diff"]["mean"] <= bench.TOLERANCE)  # one seed: the mean alone decides
    assert s["verdict"].startswith("yes" if all(x["served"] for x in s["psnr"].values()) else "no")
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").stat().st_size > 0
    capsys.readouterr()

    # a second invocation finds every ticket finished and trains nothing
    assert main(bench.TaskTickets(), ["--smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 unit(s) to run" in printed and "[1/" not in printed
    assert json.loads(out.read_text())["results"] == report["results"]

    # --report-only rebuilds the same summary from the file (the tickets run, not the defaults)
    assert main(bench.TaskTickets(), ["--report-only", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["summary"]["verdict"] == s["verdict"]


def _cell(psnr: dict[str, float], inputs: dict[str, float], dense: dict[str, float]) -> dict[str, Any]:
    return {"round": 2, "density": 0.107, "psnr": psnr, "input_psnr": inputs, "dense_psnr": dense, "source": "-"}


def test_the_verdict_separates_resolved_gaps_noise_idle_tickets_and_gaps_the_training_made() -> None:
    args = parse(bench.TaskTickets(), [])
    args.tickets = ["dehaze", "derain", "web", "all"]
    sets = {"dehaze": "dehaze/sample", "derain": "derain/sample", "web": "web/sample"}
    inputs = {"dehaze/sample": 12.0, "derain/sample": 25.0, "web/sample": 30.0}
    results = {}
    for seed, wobble in enumerate((0.0, 0.9, -0.9)):
        mine = {  # dehaze: clearly better alone (also dense); derain: gives back its input; web: noisy lead
            "dehaze": {"dehaze/sample": 18.0 + wobble / 10},
            "derain": {"derain/sample": 25.0},
            "web": {"web/sample": 30.5 + wobble},
        }
        allin = {"dehaze/sample": 13.0, "derain/sample": 25.3, "web/sample": 29.9}
        results[str(seed)] = {t: _cell(mine[t], {sets[t]: inputs[sets[t]]}, mine[t]) for t in mine}
        results[str(seed)]["all"] = _cell(allin, inputs, allin)
    init = {str(seed): {t: {"iou": 0.8 + seed / 100, "random_iou": 0.3} for t in args.tickets} for seed in range(3)}
    cross = {"dehaze": {"0|1": {"iou": 0.25, "random_iou": 0.24}, "0|2": {"iou": 0.27, "random_iou": 0.26}}}
    report = {"results": results, "init_overlap": init, "cross_seed_overlap": cross}
    summary = bench.TaskTickets().summarize(report, args)
    own = summary["init_overlap"]
    assert own["dehaze"]["iou"]["mean"] == pytest.approx(0.81) and own["all"]["n"] == 3
    assert own["dehaze"]["cross_seed"]["iou"]["mean"] == pytest.approx(0.26) and own["dehaze"]["cross_seed"]["n"] == 2
    assert "cross_seed" not in own["web"]
    p = summary["psnr"]
    assert p["dehaze"]["resolved"] and not p["dehaze"]["served"] and not p["dehaze"]["returns_input"]
    assert p["derain"]["returns_input"] and p["derain"]["served"]  # 25.0 vs 25.3: within, and it did nothing
    assert not p["web"]["served"] and not p["web"]["resolved"]  # +0.6 ± 0.9: ahead, but within the noise
    v = summary["verdict"]
    assert v.startswith("no: the task's own ticket is better on dehaze (+5.00 [")
    assert "within the noise of 3 seed(s), on web (+0.60 [" in v
    assert "The derain ticket returns its degraded input exactly" in v
    assert "already there in the dense networks" in v and "dehaze +5.00" in v
    assert "below the degraded input on web (-0.10 dB)" in v


@pytest.mark.filterwarnings("ignore")
def test_the_init_reference_and_the_dense_round_come_from_the_runs(smoke: Path) -> None:
    from lotteryir.analysis import rewind_magnitude_overlap
    from lotteryir.runs import read_history

    out = smoke
    report = json.loads(out.read_text())
    for t in ("derain", "all"):
        res = report["results"]["0"][t]
        _, ov = rewind_magnitude_overlap(ROOT / res["source"], res["round"])
        assert report["init_overlap"]["0"][t]["iou"] == ov.iou and 0 < ov.iou <= 1
        assert report["summary"]["init_overlap"][t]["iou"]["mean"] == ov.iou
        dense = read_history(ROOT / res["source"])[0]
        assert dense["round"] == 0 and res["dense_psnr"] == {k: v["psnr"] for k, v in dense["eval"].items()}
    assert "its init's magnitude mask" in out.with_suffix(".md").read_text()
