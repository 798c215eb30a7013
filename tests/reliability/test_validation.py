"""6. Options are checked before any training, each refusal names its option; NaN advice that works."""

from __future__ import annotations

import re

import pytest
import typer

from lotteryir.cli import app, main
from lotteryir.runs import read_config

from .errors import one_error_line

BASE = {
    "--model": "mirl",
    "--size": "tiny",
    "--data-path": "max_images=1",
    "--tasks": "denoise_25",
    "--rounds": "1",
    "--steps": "3",
    "--batch-size": "2",
    "--patch-size": "32",
    "--device": "cpu",
}


def _args(**changes: str | None) -> list[str]:
    options = dict(BASE)
    for key, value in changes.items():
        option = "--" + key.replace("_", "-")
        if value is None:
            options.pop(option)
        else:
            options[option] = value
    return [x for kv in options.items() for x in kv]


@pytest.mark.parametrize(
    "changes, expect",
    [
        ({"rewind": "step:10"}, ["--rewind step:10", "3 (--steps 3)"]),  # was found only after round 0 trained
        ({"patch_size": "100000"}, ["--patch-size 100000", "largest"]),  # was an allocator failure
        ({"data_path": "max_images=abc"}, ["--data-path", "max_images", "'abc'"]),  # was a Python comparison error
        ({"data_path": "colour=red"}, ["--data-path", "colour"]),
        ({"lr": "inf"}, ["--lr", "inf"]),  # passed validation
        ({"lr": "nan"}, ["--lr", "nan"]),
        ({"lr": "0"}, ["--lr"]),
        ({"lr": "-0.1"}, ["--lr"]),
        ({"rate": "1e-20", "target_density": "0.5", "rounds": None}, ["rate 1e-20", "rounds"]),  # never returned
        ({"rounds": "100000"}, ["--rounds"]),
        ({"steps": "0"}, ["--steps"]),
        ({"checkpoint_every": "0"}, ["--checkpoint-every"]),
    ],
)
def test_bad_options_are_refused_before_training(tmp_path, capsys, changes, expect):
    out = tmp_path / "run"
    one_error_line(capsys, ["prune", *_args(**changes), "--out", str(out)], *expect)
    assert not out.exists(), "a refused run leaves no directory tied to its configuration"


def test_a_failed_run_says_exactly_how_to_go_on(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["prune", *_args(lr="1e30"), "--out", str(out)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1  # (the progress bar shares stderr)
    line = errors[0]
    assert "round 0" in line and "new --out" in line and str(out) in line
    # Every option it suggests exists, and no option the command line does not have.
    suggested = set(re.findall(r"(--[a-z][a-z-]*)", line))
    known = {opt for param in typer.main.get_command(app).commands["prune"].params for opt in param.opts}
    assert suggested and suggested <= known, suggested - known
    assert "clip_grad" not in line and "amp" not in line
    assert read_config(out).lr == 1e30  # nothing lost: the directory is kept as it was
    # The advice is right: the same --out with a lower lr is refused, a new --out runs.
    one_error_line(capsys, ["prune", *_args(lr="1e-3"), "--out", str(out)], "different configuration", "lr")
    assert main(["prune", *_args(lr="1e-3", rounds="0", steps="1"), "--out", str(tmp_path / "new")]) == 0
