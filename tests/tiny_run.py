"""The tiny pruning run the run, CLI and distributed tests share (config, CLI args)."""

from __future__ import annotations

TINY = dict(
    model="mirl",
    size="tiny",
    recipe="sample",
    # Test photographs at most 64 px on the long side (256 by default): scoring is most of a tiny run.
    data_paths={"max_images": 2, "test_max_side": 64},
    tasks=["denoise_25", "derain"],
    rounds=2,
    steps=4,
    batch_size=2,
    patch_size=32,
    checkpoint_every=1,
    seed=3,
    device="cpu",
)

TINY_ARGS = [
    "--model",
    "mirl",
    "--size",
    "tiny",
    "--data-path",
    "max_images=2",
    "--data-path",
    "test_max_side=64",
    "--tasks",
    "denoise_25,derain",
    "--rounds",
    "2",
    "--steps",
    "4",
    "--batch-size",
    "2",
    "--patch-size",
    "32",
    "--checkpoint-every",
    "1",
    "--seed",
    "3",
    "--device",
    "cpu",
]

# The smallest prune of a user's own network (one photograph, one task, 2 steps of 16 px patches),
# for tests that care what a command does with the model, not what it learns.
OWN_MODEL_ARGS = [
    "--data-path",
    "max_images=1",
    "--data-path",
    "test_max_side=64",
    "--tasks",
    "denoise_25",
    "--steps",
    "2",
    "--batch-size",
    "2",
    "--patch-size",
    "16",
    "--device",
    "cpu",
    "--threads",
    "1",
]
