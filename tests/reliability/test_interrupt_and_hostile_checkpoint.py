"""Ctrl-C checkpoints before it stops, and a run's optimizer file cannot run code when resumed."""

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
from lotteryir.engine import TrainingStopped
from lotteryir.runs import PruningRun, RunConfig, read_history

REPO = Path(__file__).resolve().parents[2]
STEPS = 6
# checkpoint_every beyond the round: only a stop (or the round's end) writes a checkpoint.
ARGS = [
    "--model", "mirl", "--size", "tiny", "--data-path", "max_images=1", "--tasks", "denoise_25",
    "--rounds", "1", "--steps", str(STEPS), "--batch-size", "2", "--patch-size", "32",
    "--checkpoint-every", "1000", "--seed", "3", "--device", "cpu", "--threads", "1",
]  # fmt: skip


def test_ctrl_c_checkpoints_then_stops_and_the_rerun_continues_from_there(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lotteryir", "prune", *ARGS, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Round 0 is committed: Ctrl-C now lands in round 1 (its training has 6 steps to go).
        deadline = time.monotonic() + 300
        while not (out / "rounds" / "r00" / "metrics.json").exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    flat = " ".join(stderr.split())  # rich wraps at the terminal width, wherever the tmp path ends
    assert "checkpointing" in flat and "Rerun the same command to resume" in flat, stderr
    state = json.loads((out / "rounds" / "r01" / "ckpt" / "train_state.json").read_text())
    assert 1 <= state["step"] < STEPS, state  # written by the stop: no periodic checkpoint is due
    assert f"after step {state['step']}" in stderr, stderr
    assert not (out / "rounds" / "r01" / "metrics.json").exists()
    assert [h["round"] for h in read_history(out)] == [0]

    assert main(["prune", *ARGS, "--out", str(out)]) == 0
    history = read_history(out)
    assert [h["round"] for h in history] == [0, 1]
    assert history[1]["train"]["resumed_from"] == state["step"]


class _Plant:
    """Unpickling this creates the marker file: what a hostile optimizer file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_hostile_optimizer_file_in_a_run_is_refused_on_resume(tmp_path, capsys):
    out, marker = tmp_path / "run", tmp_path / "unpickled"
    config = RunConfig(
        model="mirl", size="tiny", recipe="sample", data_paths={"max_images": 1}, tasks=["denoise_25"],
        rounds=1, steps=STEPS, batch_size=2, patch_size=32, checkpoint_every=1000, seed=3, device="cpu",
    )  # fmt: skip
    with pytest.raises(TrainingStopped):
        PruningRun(out, config, should_stop=lambda: True).run()  # stops after step 1, checkpointed
    ckpt = out / "rounds" / "r00" / "ckpt"
    optim = ckpt / json.loads((ckpt / "train_state.json").read_text())["optim_file"]
    torch.save({"optimizer": _Plant(marker)}, optim)

    code = main(["prune", *ARGS, "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]  # the rest is the progress bar
    assert not marker.exists(), "resuming unpickled the optimizer file"
    assert code == 1, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(optim) in lines[0] and "weights_only" in lines[0], lines[0]
