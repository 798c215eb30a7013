"""Lightning's ``ddp`` strategy on 2 CPU processes (gloo), launched as a user would: ``python script.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning.pytorch")

SCRIPT = Path(__file__).with_name("lightning_ddp.py")


def test_ddp_rounds_agree_masks_are_not_broadcast_and_a_diverged_rank_is_caught(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SCRIPT.parents[2])}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--corrupt-round", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    output = proc.stdout + proc.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for history in ranks:
        assert [e["round"] for e in history] == [0, 1], output  # round 2 never trained
        for entry in history:
            assert (entry["world"], entry["backend"], entry["wrapper"]) == (2, "gloo", "DistributedDataParallel")
            assert entry["ignored"] == ["a.weight_mask", "b.weight_mask"]  # DDP leaves the masks alone
    assert ranks[1][1]["density"] == 0.5
    for mine, theirs in zip(*ranks):
        assert mine["checksum"] == theirs["checksum"] and mine["weights"] == theirs["weights"]
    # Rank 1's mask was flipped before round 2's fit: the callback's check fails on every rank.
    assert proc.returncode != 0
    assert "MaskMismatchError: rank 0: the round 2 (Lightning) masks differ between the 2 ranks" in output
