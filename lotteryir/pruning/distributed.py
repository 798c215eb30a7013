"""Mask agreement across DistributedDataParallel ranks.

Every rank computes the next mask itself from its replica's weights (DDP keeps
the replicas identical), so no mask travels over the network. What does travel
is a checksum: a few integers per tensor, compared with one all-reduce. A rank
whose mask differs is an error on every rank, never a silent divergence.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist

from .mask import Mask

_PRIME = 1_000_003


class MaskMismatchError(RuntimeError):
    """The ranks of a distributed run hold different pruning masks."""


def active() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def mask_checksum(mask: Mask, names: Iterable[str] | None = None) -> torch.Tensor:
    """Per tensor: survivors, sum of their flat positions, sum of squared positions mod a prime (int64)."""
    rows = []
    for name in names if names is not None else mask:
        flat = mask[name].reshape(-1)
        pos = torch.nonzero(flat, as_tuple=True)[0].to(torch.int64)
        rows.append(torch.stack([pos.new_tensor(pos.numel()), pos.sum(), ((pos * pos) % _PRIME).sum()]))
    if not rows:
        return torch.zeros(0, 3, dtype=torch.int64)
    return torch.stack(rows)


def verify_masks_agree(mask: Mask, level: int, what: str = "pruning") -> None:
    """Raise :class:`MaskMismatchError` on every rank unless all ranks hold ``mask`` at ``level``.

    A no-op outside a process group. Every rank must call it with masks over
    the same tensor names, in the same order.
    """
    if not active():
        return
    local = torch.cat([mask_checksum(mask).reshape(-1).cpu(), torch.tensor([level, len(mask)], dtype=torch.int64)])
    # gloo and nccl both reduce with MAX; min(x) = -max(-x), so one call yields both extremes.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    both = torch.cat([local, -local]).to(device)
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    hi, lo = both[: local.numel()].cpu(), -both[local.numel():].cpu()
    if not torch.equal(hi, lo):
        names = list(mask)
        bad = sorted({int(i) // 3 for i in torch.nonzero(hi[:-2] != lo[:-2]).flatten()})
        which = ", ".join(names[i] for i in bad[:5]) or "(the pruning level)"
        raise MaskMismatchError(
            f"rank {dist.get_rank()}: the {what} masks differ between the {dist.get_world_size()} ranks "
            f"(level {level}; tensors {which}). Ranks must hold identical weights before pruning: wrap the "
            "model in DistributedDataParallel after creating the pruner, and prune on every rank."
        )
