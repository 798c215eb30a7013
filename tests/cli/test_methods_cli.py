"""``lotteryir prune --method NAME``: a tiny early-bird run end to end, and the method's errors as one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from lotteryir.cli import main
from lotteryir.pruning import Mask
from lotteryir.runs import PruningRun, RunConfig, read_history

from ..tiny_run import TINY, TINY_ARGS

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


def test_gmp_killed_mid_round_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL between two gmp mask updates; the rerun resumes from the checkpoint (masks in weight_mask)."""
    gmp = ["--steps", "12", "--target-density", "0.2", "--method", "gmp", "--method-option", "every=2"]
    gmp += ["--threads", "1"]
    ref = tmp_path / "ref"
    config = {**TINY, "rounds": None, "target_density": 0.2, "steps": 12, "threads": 1}
    PruningRun(ref, RunConfig(**config, method="gmp", method_options={"every": 2})).run()
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "lotteryir", "prune", *ARGS, *gmp, "--out", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    state = out / "rounds" / "r00" / "ckpt" / "train_state.json"
    # Wait (on a slow machine as long as it takes, up to the deadline) for a checkpoint past the first update.
    deadline, checkpointed = time.time() + 240, None
    try:
        while checkpointed is None and proc.poll() is None and time.time() < deadline:
            if state.is_file():
                step = json.loads(state.read_text()).get("step", 0)  # written atomically: complete or absent
                checkpointed = step if step >= 3 else None
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert checkpointed is not None, f"no checkpoint at step >= 3 (exit code {proc.returncode}): nothing to resume"
    assert not (out / "rounds" / "r00" / "metrics.json").exists(), "killed too late to test a mid-round resume"
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=240)
    assert result.returncode == 0, result.stderr
    assert read_history(out)[0]["train"]["resumed_from"] >= checkpointed  # resumed, not trained from step 0
    masks = [Mask.load(d / "rounds" / "r00" / "mask.safetensors") for d in (ref, out)]
    assert masks[0] == masks[1] and masks[0].density < 0.2 + 1e-4
    a, b = (load_file(str(d / "pruner" / "model.safetensors")) for d in (ref, out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_history(out)[0]["method"] == read_history(ref)[0]["method"]
