"""The command line end to end: prune, resume after SIGKILL, evaluate, export, report, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lotteryir.cli import main
from lotteryir.pruning import Mask
from lotteryir.pruning.ticket import load_compact
from lotteryir.runs import read_history

from .tiny_run import TINY_ARGS

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _one_error_line(capsys, argv: list[str], expect: str) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    lines = [l for l in captured.err.splitlines() if l.strip()]
    assert code != 0, captured
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert expect in lines[0], lines[0]
    return lines[0]


def _strip_timing(history: list[dict]) -> list[dict]:
    out = []
    for h in history:
        h = {k: v for k, v in h.items() if k != "seconds"}
        h["train"] = {k: v for k, v in h["train"].items() if k not in ("seconds", "resumed_from")}
        h["cost"] = {k: v for k, v in h.get("cost", {}).items() if k != "train_seconds"}
        out.append(h)
    return out


def _same_run(a: Path, b: Path) -> None:
    ha, hb = read_history(a), read_history(b)
    assert _strip_timing(ha) == _strip_timing(hb)
    for h in ha:
        r = f"r{h['round']:02d}"
        assert Mask.load(a / "rounds" / r / "mask.safetensors") == Mask.load(b / "rounds" / r / "mask.safetensors")
        wa, _, _ = load_compact(a / "rounds" / r / "ticket.safetensors")
        wb, _, _ = load_compact(b / "rounds" / r / "ticket.safetensors")
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_prune_end_to_end_matches_the_api_run(finished_run, tmp_path, capsys):
    # In this process (a fresh interpreter costs seconds): the SIGKILL test below runs `python -m lotteryir`.
    assert main(["prune", *TINY_ARGS, "--out", str(tmp_path / "cli")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    for piece in (
        "recipe built-in sample",
        "model mirl/tiny",
        "device cpu (1 thread: OMP_NUM_THREADS)",
        "3 trainings x 4 steps",
        "expected duration",
    ):
        assert piece in first, first
    _same_run(finished_run, tmp_path / "cli")


def test_sigkill_mid_round_then_resume_gives_identical_results(finished_run, tmp_path, capsys):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lotteryir", "prune", *TINY_ARGS, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    state = out / "rounds" / "r01" / "ckpt" / "train_state.json"
    deadline = time.time() + 90
    try:
        while time.time() < deadline:
            if state.is_file() and json.loads(state.read_text()).get("step", 0) >= 2:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the run never reached step 2 of round 1")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "rounds" / "r01" / "metrics.json").exists(), "killed too late to test a mid-round resume"
    # Only the killed run needs a process of its own; the rerun is the same command in this one.
    assert main(["prune", *TINY_ARGS, "--out", str(out)]) == 0
    assert "resuming after round 0" in capsys.readouterr().out.splitlines()[0]
    _same_run(finished_run, out)


def _with(args: list[str], option: str, value: str) -> list[str]:
    i = args.index(option)
    return [*args[: i + 1], value, *args[i + 2 :]]


def test_changed_configuration_refused(finished_run, capsys):
    _one_error_line(
        capsys, ["prune", *TINY_ARGS, "--rate", "0.3", "--out", str(finished_run)], "different configuration"
    )
    line = _one_error_line(
        capsys, ["prune", *_with(TINY_ARGS, "--rounds", "1"), "--out", str(finished_run)], "rounds: 2 -> 1"
    )
    assert "larger --rounds" in line


def test_a_larger_rounds_continues_a_finished_run(finished_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert main(["prune", *_with(TINY_ARGS, "--rounds", "3"), "--out", str(run)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "resuming after round 2 (extended from 2 to 3 rounds)" in first, first
    history = read_history(run)
    assert [h["round"] for h in history] == [0, 1, 2, 3]
    assert history[:3] == read_history(finished_run)  # the finished rounds are kept as they were
    assert history[3]["density"] == pytest.approx(0.512, abs=1e-3)
    assert json.loads((run / "config.json").read_text())["rounds"] == 3
    state = json.loads((run / "pruner" / "pruner.json").read_text())
    assert state["extensions"] == [{"after_round": 2, "rounds": [2, 3], "rewind": ["init", "init"]}]
    # A target density below the run's: continued the same way (0.8^4 = 0.41 <= 0.45).
    i = TINY_ARGS.index("--rounds")
    assert main(["prune", *TINY_ARGS[:i], *TINY_ARGS[i + 2 :], "--target-density", "0.45", "--out", str(run)]) == 0
    assert [h["round"] for h in read_history(run)] == [0, 1, 2, 3, 4]


def test_export_then_evaluate_equals_evaluating_the_round(finished_run, tmp_path, capsys):
    ticket = tmp_path / "ticket.safetensors"
    assert main(["export", str(finished_run), "--round", "2", "-o", str(ticket)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(finished_run), "--round", "2", "--json"]) == 0
    from_run = json.loads(capsys.readouterr().out)
    sample = ["--data-path", "max_images=2", "--data-path", "test_max_side=64", "--tasks", "denoise_25,derain"]
    assert main(["evaluate", str(ticket), "--json", *sample]) == 0
    from_ticket = json.loads(capsys.readouterr().out)
    assert from_ticket["sets"] == from_run["sets"]
    assert from_run["sets"] == read_history(finished_run)[2]["eval"]
    assert from_ticket["density"] == pytest.approx(0.64, abs=1e-4)
    fp16 = tmp_path / "half.safetensors"
    assert main(["export", str(finished_run), "-o", str(fp16), "--dtype", "fp16"]) == 0
    assert fp16.stat().st_size < ticket.stat().st_size


def test_report_and_restore(finished_run, tmp_path, capsys):
    assert main(["report", str(finished_run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["round"] for r in data["rounds"]] == [0, 1, 2]
    # Each set says whether the training left it at its input (every image within 0.01 dB).
    assert all(type(s["did_not_learn"]) is bool for r in data["rounds"] for s in r["eval"].values())
    assert main(["report", str(finished_run)]) == 0
    text = capsys.readouterr().out
    assert "0.6400" in text and "mean PSNR" in text
    from lotteryir.data import read_image, write_image

    img = torch.rand(3, 37, 53)
    write_image(img, tmp_path / "in.png")
    assert main(["restore", str(finished_run), str(tmp_path / "in.png"), "-o", str(tmp_path / "out")]) == 0
    assert read_image(tmp_path / "out" / "in.png").shape == (3, 37, 53)


def test_listings(capsys):
    assert main(["models"]) == 0
    assert "35,592,263" in capsys.readouterr().out
    assert main(["recipes"]) == 0
    text = capsys.readouterr().out
    assert "sample" in text and "mirl" in text and "Rain100L" in text


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["prune", "--model", "nope", "--rounds", "1"], "unknown model 'nope'"),
        (["prune", "--size", "huge", "--rounds", "1"], "huge"),
        (["prune", "--rate", "0", "--rounds", "1"], "--rate must be in (0, 1)"),
        (["prune", "--rate", "1.5", "--rounds", "1"], "--rate must be in (0, 1)"),
        (["report", "."], "not a lotteryir run directory"),
        (["evaluate", "does-not-exist.safetensors"], "no such checkpoint"),
    ],
)
def test_bad_inputs_one_line(capsys, tmp_path, argv, expect):
    if argv[0] == "prune":
        argv = [*argv, "--out", str(tmp_path / "run")]
    if argv[0] == "report":
        argv = ["report", str(tmp_path)]
    _one_error_line(capsys, argv, expect)
    assert not (tmp_path / "run").exists(), "a refused run leaves nothing behind"


def test_wrong_data_layout(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    line = _one_error_line(
        capsys,
        [
            "prune",
            "--recipe",
            "mirl",
            "--data",
            str(tmp_path / "data"),
            "--rounds",
            "1",
            "--out",
            str(tmp_path / "run"),
        ],
        "cannot run",
    )
    assert f"folder not found: {tmp_path / 'data' / 'train' / 'denoise'}" in line and "more)" in line


def test_checkpoint_of_another_model(capsys, tmp_path):
    from lotteryir.models import build_model

    torch.save(build_model("restormer", "tiny").state_dict(), tmp_path / "restormer.pt")
    torch.save({"state_dict": {"net.foo.weight": torch.zeros(2, 2)}}, tmp_path / "odd.ckpt")
    _one_error_line(
        capsys,
        ["restore", str(tmp_path / "odd.ckpt"), str(tmp_path / "x.png"), "-o", str(tmp_path / "out")],
        "match no registered model",
    )
    line = _one_error_line(
        capsys,
        ["restore", str(tmp_path / "restormer.pt"), str(tmp_path / "missing.png"), "-o", str(tmp_path / "out")],
        "missing.png",
    )
    assert "Traceback" not in line


def test_pruning_warnings_are_one_line_each(capsys, monkeypatch):
    import warnings

    from lotteryir.cli import _show_pruning_warnings
    from lotteryir.pruning import PruningWarning

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored afterwards
    _show_pruning_warnings()
    warnings.showwarning(PruningWarning("level 4: global pruning left 1 tensor(s) ..."), PruningWarning, "x.py", 1)
    assert capsys.readouterr().err.splitlines() == ["warning: level 4: global pruning left 1 tensor(s) ..."]
    monkeypatch.setenv("RANK", "1")  # under torchrun, rank 0 alone reports
    warnings.showwarning(PruningWarning("again"), PruningWarning, "x.py", 1)
    assert capsys.readouterr().err == ""


def test_evaluate_of_an_identity_restorer_shows_the_input_row_and_zero_gain(tmp_path, capsys):
    from lotteryir.models import build_model

    model = build_model("mirl", "tiny")
    with torch.no_grad():  # output conv at zero: the global residual makes the network the identity
        model.output.weight.zero_()
    torch.save(model.state_dict(), tmp_path / "identity.pt")
    sample = ["--data-path", "max_images=2", "--data-path", "test_max_side=64", "--tasks", "denoise_25,derain"]
    assert main(["evaluate", str(tmp_path / "identity.pt"), "--json", *sample]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mean_gain"] == 0.0 and data["worse_than_input"] == []
    for s in data["sets"].values():
        assert (s["psnr"], s["ssim"]) == (s["input_psnr"], s["input_ssim"])
    assert main(["evaluate", str(tmp_path / "identity.pt"), *sample]) == 0
    text = capsys.readouterr().out
    assert "input PSNR" in text and "+0.00" in text


def test_round_table_has_an_input_row_and_names_sets_worse_than_it():
    from rich.console import Console

    from lotteryir.cli import _round_table

    def entry(r, psnrs):
        ev = {label: {"psnr": p, "ssim": 0.5, "input_psnr": 20.0, "input_ssim": 0.4} for label, p in psnrs.items()}
        return {
            "round": r,
            "density": 0.8**r,
            "remaining": 100,
            "eval": ev,
            "mean_psnr": sum(psnrs.values()) / 2,
            "mean_ssim": 0.5,
            "mean_input_psnr": 20.0,
            "controls": {},
            "seconds": 1.0,
        }

    console = Console(record=True, width=200, color_system=None)
    console.print(
        _round_table(
            [
                entry(0, {"web/sample": 21.0, "derain/sample": 19.5}),
                entry(1, {"web/sample": 22.0, "derain/sample": 23.0}),
            ]
        )
    )
    text = console.export_text().replace("│", " ")
    rows = {
        line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in ("input", "0", "1")
    }
    assert "20.00" in rows["input"]
    assert "+0.25" in rows["0"] and "+2.50" in rows["1"]  # mean gain over the input
    assert "round 0 is worse than its input on rain (-0.50 dB)" in text
    assert "round 1 is worse" not in text


def test_round_table_names_a_training_that_did_not_learn():
    from rich.console import Console

    from lotteryir.cli import _round_table

    def scores(psnr, same):
        return {"psnr": psnr, "ssim": 0.5, "input_psnr": 20.0, "input_ssim": 0.4, "did_not_learn": same}

    def entry(r, rain_same, control_web_same):
        ev = {"derain/sample": scores(20.0 if rain_same else 19.0, rain_same), "web/sample": scores(21.0, False)}
        control = {"derain/sample": scores(21.0, False), "web/sample": scores(20.0, control_web_same)}
        return {
            "round": r,
            "density": 0.8**r,
            "remaining": 100,
            "eval": ev,
            "mean_psnr": 20.5,
            "mean_ssim": 0.5,
            "mean_input_psnr": 20.0,
            "controls": {"random_reinit": {"eval": control, "mean_psnr": 20.5}} if r else {},
            "seconds": 1.0,
        }

    console = Console(record=True, width=200, color_system=None)
    console.print(_round_table([entry(0, True, False), entry(1, False, True)]))
    text = console.export_text()
    assert "round 0 did not learn on rain: every image within 0.01 dB of its input" in text
    assert "round 1 (random_reinit) did not learn on web" in text
    # Round 1 learned rain (it is worse, and says so); round 0's web was learned.
    assert "round 1 did not learn" not in text and "round 0 did not learn on rain, web" not in text
    assert "round 1 is worse than its input on rain (-1.00 dB)" in text
    assert "every round beats the degraded input" not in text
