"""Pruning under DistributedDataParallel: no mask traffic, and checks that ranks agree.

Every rank computes the next mask itself from its replica's weights (DDP keeps
the replicas identical), so no mask travels over the network: the pruner tells
DDP to leave the mask buffers out of its per-forward buffer broadcast
(:func:`ddp_ignore_masks`). What does travel is a checksum: a few integers per
tensor, compared with one all-reduce, when the pruner starts (the weights) and
after every pruning (the masks). A rank that differs is an error on every rank,
never a silent divergence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.distributed as dist
from torch import nn

from .mask import MASK_SUFFIX, ORIG_SUFFIX, Mask

_PRIME = 1_000_003
_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class MaskMismatchError(RuntimeError):
    """The ranks of a distributed run hold different pruning masks."""


class WeightMismatchError(RuntimeError):
    """The ranks of a distributed run start pruning from different weights."""


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
    bad = _agree(local)
    if bad.numel():
        names = list(mask)
        tensors = sorted({int(i) // 3 for i in bad if int(i) < 3 * len(names)})
        which = ", ".join(names[i] for i in tensors[:5]) or "(the pruning level)"
        raise MaskMismatchError(
            f"rank {dist.get_rank()}: the {what} masks differ between the {dist.get_world_size()} ranks "
            f"(level {level}; tensors {which}). Ranks must hold identical weights before pruning: wrap the "
            "model in DistributedDataParallel after creating the pruner, and prune on every rank."
        )


def mask_buffer_names(module: nn.Module) -> list[str]:
    """Fully qualified names of the pruning-mask buffers under ``module`` (every name of a shared one)."""
    names = []
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for key in sub._buffers:
            if key.endswith(MASK_SUFFIX) and key[: -len(MASK_SUFFIX)] + ORIG_SUFFIX in sub._parameters:
                names.append(f"{prefix}.{key}" if prefix else key)
    return names


def ddp_ignore_masks(module: nn.Module) -> list[str]:
    """Keep DistributedDataParallel from broadcasting ``module``'s pruning masks; returns their names.

    DDP broadcasts every buffer from rank 0 before each forward; masks would cost
    their full size per step (33 MB for the full MIR-L). Every rank computes its
    masks itself and the pruner verifies them, so they are put on DDP's list of
    parameters and buffers to ignore (other buffers, e.g. BatchNorm statistics,
    are still broadcast). The pruner calls this on the model it is given; call it
    yourself on a parent module that you wrap instead. Call before wrapping.
    """
    names = mask_buffer_names(module)
    ignored = list(getattr(module, "_ddp_params_and_buffers_to_ignore", []))
    ignored += [n for n in names if n not in ignored]
    from torch.nn.parallel import DistributedDataParallel

    setter = getattr(DistributedDataParallel, "_set_params_and_buffers_to_ignore_for_model", None)
    if setter is not None:  # DDP's documented way (a static method; it also marks the tensors)
        setter(module, ignored)
    else:
        setattr(module, "_ddp_params_and_buffers_to_ignore", ignored)  # noqa: B010  (DDP reads it by name)
    return names


def tensor_checksum(t: torch.Tensor) -> torch.Tensor:
    """Bit-exact fingerprint of a tensor: the sum of its elements' bit patterns and a position-weighted sum."""
    flat = t.detach().contiguous().reshape(-1)
    if flat.dtype == torch.bool:
        bits = flat.to(torch.int64)
    else:
        bits = flat.view(_INT_OF_SIZE[flat.element_size()]).to(torch.int64)
    if not bits.numel():
        return torch.zeros(2, dtype=torch.int64)
    pos = torch.arange(bits.numel(), dtype=torch.int64, device=bits.device) % _PRIME
    return torch.stack([bits.sum(), ((bits % _PRIME) * pos % _PRIME).sum()]).cpu()


def _agree(local: torch.Tensor) -> torch.Tensor:
    """Indices where ranks disagree on ``local`` (one all-reduce of max and -min)."""
    # gloo and nccl both reduce with MAX; min(x) = -max(-x), so one call yields both extremes.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    both = torch.cat([local, -local]).to(device)
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    hi, lo = both[: local.numel()].cpu(), -both[local.numel() :].cpu()
    return torch.nonzero(hi != lo).flatten()


def verify_weights_agree(tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`WeightMismatchError` on every rank unless all ranks hold identical ``tensors``.

    A no-op outside a process group. Every rank must pass the same names in the same order.
    """
    if not active():
        return
    names = list(tensors)
    local = (
        torch.cat(
            [
                torch.stack([tensor_checksum(t) for t in tensors.values()]).reshape(-1),
                torch.tensor([len(names)], dtype=torch.int64),
            ]
        )
        if names
        else torch.zeros(1, dtype=torch.int64)
    )
    bad = _agree(local)
    if bad.numel():
        first = int(bad[0]) // 2
        which = names[first] if first < len(names) else "(the number of tensors)"
        raise WeightMismatchError(
            f"rank {dist.get_rank()}: the {dist.get_world_size()} ranks start pruning from different weights "
            f"(first differing tensor: {which}). Every rank must build the model from the same seed "
            "(torch.manual_seed before building it) or load the same checkpoint before creating the pruner; "
            "DistributedDataParallel's broadcast of rank 0's weights comes too late for the rewind point."
        )
