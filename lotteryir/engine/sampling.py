"""Data order: which items each optimizer step sees, fixed by (seed, round, epoch), and the seeds of every RNG."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["derive_seed", "seed_global_rngs", "epoch_batches", "epoch_loader", "unpack_batch"]


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, so (seed, round, epoch) streams never collide."""
    words = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts] + [len(parts)]).generate_state(2)
    return ((int(words[0]) << 32) | int(words[1])) & (2**63 - 1)


def seed_global_rngs(seed: int) -> None:
    """Seed torch's, NumPy's and Python's global generators, so dropout and augmentations repeat too."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def epoch_batches(
    dataset_len: int, seed: int, round_: int, epoch: int, micro_batches: int, batch_size: int, world: int, rank: int
) -> list[list[int]]:
    """This rank's item indices for each of an epoch's ``micro_batches`` global batches of ``batch_size``.

    One permutation per (seed, round, epoch); rank r takes columns [r*share, (r+1)*share) of each
    global batch, so the union over ranks is the batch a single process draws.
    """
    order = torch.randperm(dataset_len, generator=torch.Generator().manual_seed(derive_seed(seed, round_, epoch, 1)))
    share = batch_size // world
    return order[: micro_batches * batch_size].view(micro_batches, world, share)[:, rank].tolist()


def epoch_loader(
    dataset: Dataset,
    batches: list[list[int]],
    seed: int,
    round_: int,
    epoch: int,
    num_workers: int,
    device: torch.device,
) -> DataLoader:
    """A loader over ``batches`` whose workers' generators are seeded from (seed, round, epoch)."""
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(derive_seed(seed, round_, epoch, 2)),
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        pin_memory=device.type == "cuda",
    )


def unpack_batch(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) on ``device`` from a batch of dicts or of (input, target) pairs."""
    if isinstance(batch, dict):
        inputs, targets = batch["input"], batch["target"]
    elif isinstance(batch, Sequence) and len(batch) >= 2:
        inputs, targets = batch[0], batch[1]
    else:
        raise TypeError(
            f"training items must be dicts with 'input' and 'target' or (input, target) pairs; got {type(batch)}"
        )
    return inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; NumPy and random follow from it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
