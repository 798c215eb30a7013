"""The reliability suite's run: a tiny configuration that still passes every phase, and comparisons.

``python -m tests.reliability.runs OUT`` runs it in a fresh process (what the SIGKILL tests kill).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from lotteryir._files import is_leftover
from lotteryir.pruning import Mask
from lotteryir.pruning.ticket import load_compact
from lotteryir.runs import PruningRun, RunConfig, read_history

# Round 0 with a late-rewinding snapshot (step 1), two pruned rounds, each with a control training.
RELIABLE = dict(
    model="mirl",
    size="tiny",
    recipe="sample",
    data_paths={"max_images": 1, "test_max_side": 64},  # small test images: scoring is most of a run
    tasks=["denoise_25"],
    rounds=2,
    steps=2,
    batch_size=2,
    patch_size=32,
    checkpoint_every=1,
    seed=3,
    device="cpu",
    rewind="step:1",
    controls=["random_prune"],
)

# How long (a training, or the training seconds of a round's cost), and from which step a training
# resumed: not results.
TIMING = ("seconds", "train_seconds", "resumed_from")


def run(out: Path) -> list[dict[str, Any]]:
    """The reliability configuration, uninterrupted (or resumed) in ``out``."""
    torch.set_num_threads(1)
    return PruningRun(out, RunConfig(**RELIABLE)).run()


def without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def assert_same_run(reference: Path, other: Path) -> None:
    """Masks, weights, history and pruner state identical; nothing half-written left behind."""
    history = read_history(other)
    assert without_timing(history) == without_timing(read_history(reference))
    for h in history:
        r = f"r{h['round']:02d}"
        assert Mask.load(other / "rounds" / r / "mask.safetensors") == Mask.load(
            reference / "rounds" / r / "mask.safetensors"
        ), r
        mine, _, _ = load_compact(other / "rounds" / r / "ticket.safetensors")
        theirs, _, _ = load_compact(reference / "rounds" / r / "ticket.safetensors")
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), r
        assert json.loads((other / "rounds" / r / "metrics.json").read_text()) == history[h["round"]]
    for name in ("model.safetensors", "rewind.safetensors", "mask.safetensors"):
        mine, theirs = load_file(str(other / "pruner" / name)), load_file(str(reference / "pruner" / name))
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), name
    state, ref_state = (json.loads((d / "pruner" / "pruner.json").read_text()) for d in (other, reference))
    assert without_timing(state) == without_timing(ref_state)
    left = [p for p in other.rglob("*") if is_leftover(p) or p.name.startswith("ckpt") or p.name == "pruner.old"]
    assert not left, f"left behind: {left}"
    assert (other / "report.png").is_file()


if __name__ == "__main__":
    run(Path(sys.argv[1]))
