"""``lotteryir prune --method NAME``: a tiny early-bird run end to end, and the method's errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lotteryir.cli import main
from lotteryir.runs import read_history

from ..tiny_run import TINY_ARGS

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
# The tiny run without its --rounds: the methods other than imp take --target-density.
ARGS = [a for i, a in enumerate(TINY_ARGS) if a != "--rounds" and TINY_ARGS[i - 1] != "--rounds"]


def test_prune_method_early_bird_end_to_end(tmp_path):
    out = tmp_path / "eb"
    options = ["--method-option", "every=1", "--method-option", "epsilon=0.5", "--method-option", "patience=2"]
    argv = ["prune", *ARGS, "--steps", "8", "--target-density", "0.2", "--method", "early-bird", *options]
    command = [sys.executable, "-m", "lotteryir", *argv, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "method early-bird, 2 trainings x 8 steps" in result.stdout.splitlines()[0]
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "early-bird" and config["method_options"] == {"every": 1, "epsilon": 0.5, "patience": 2}
    first, second = read_history(out)
    stop = first["method"]["stopped_at"]
    assert stop is not None and first["train"]["steps"] == stop < 8 and second["train"]["steps"] == 8
    assert f"early-bird: round 0 stopped at step {stop} of 8" in result.stdout
    assert second["density"] < 0.2 + 1e-4 and (out / "rounds" / "r01" / "mask.safetensors").is_file()


def test_prune_method_errors_are_one_line(capsys, tmp_path):
    for extra, expect in (
        (["--method", "gmp", "--rounds", "2"], "--method gmp needs --target-density"),
        (["--method", "gmp", "--target-density", "0.2", "--method-option", "every"], "--method-option takes KEY=VALUE"),
        (["--method", "imp", "--rounds", "1", "--shuffle-within-layers"], "--shuffle-within-layers is the control"),
    ):
        code = main(["prune", *ARGS, *extra, "--out", str(tmp_path / "x")])
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert code != 0 and len(err) == 1 and expect in err[0], err
        assert not (tmp_path / "x").exists()
