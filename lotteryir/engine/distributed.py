"""torch.distributed under torchrun: process group, rank queries, collectives, the DDP wrapper.

Every helper works unchanged in a single process (no group, or a group of
one): ``rank()`` is 0, ``barrier()`` does nothing, ``broadcast_object`` returns
its argument. torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
variables; :func:`init_from_env` starts the group from them.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "init_from_env",
    "shutdown",
    "is_distributed",
    "rank",
    "world_size",
    "is_main",
    "barrier",
    "broadcast_object",
    "all_gather_object",
    "all_reduce_sum",
    "ddp_wrap",
    "env_rank",
]

log = logging.getLogger(__name__)

# Rank 0 evaluates alone while the others wait at a barrier: allow a long evaluation.
TIMEOUT = datetime.timedelta(minutes=60)
_owned = False


def env_rank() -> int:
    """This process's rank as torchrun announced it (0 outside torchrun); needs no group."""
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and reports progress."""
    return rank() == 0


def init_from_env(device: str | torch.device | None = None) -> torch.device:
    """Start the process group torchrun describes (if any) and return this process's device.

    Without WORLD_SIZE > 1 in the environment nothing starts and ``device`` is
    resolved as usual. Under torchrun ``device`` None or ``cuda`` means
    ``cuda:LOCAL_RANK`` with the nccl backend; ``cpu`` (or no CUDA) uses gloo.
    A group the caller already started is used as is.
    """
    from lotteryir.engine.device import pick_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not is_distributed():
        return pick_device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = torch.device(device) if device is not None else None
    if wanted is None and torch.cuda.is_available():
        wanted = torch.device("cuda")
    if wanted is None:
        wanted = torch.device("cpu")
    if wanted.type == "cuda":
        if wanted.index is not None and world > 1:
            raise ValueError(
                f"device {wanted} was given to a run of {world} processes; leave --device unset or 'cuda' "
                "under torchrun: each process uses cuda:LOCAL_RANK"
            )
        wanted = pick_device(torch.device("cuda", local))
        torch.cuda.set_device(wanted)
    if not is_distributed():
        global _owned
        backend = "nccl" if wanted.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "timeout": TIMEOUT}
        if backend == "nccl" and "device_id" in inspect.signature(dist.init_process_group).parameters:
            kwargs["device_id"] = wanted  # binds the group to this GPU (torch >= 2.3)
        dist.init_process_group(**kwargs)
        _owned = True
        log.info("process group: rank %d of %d (%s) on %s", dist.get_rank(), dist.get_world_size(), backend, wanted)
    return wanted


def shutdown() -> None:
    """Destroy the process group if :func:`init_from_env` started it."""
    global _owned
    if _owned and dist.is_initialized():
        dist.destroy_process_group()
    _owned = False


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (picklable objects)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` over ranks (a new tensor; the input is left alone)."""
    out = values.detach().clone()
    if is_distributed():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


class _Wrapper:
    """Holds a model's DDP wrapper in ``model.__dict__``: lives and dies with the model.

    A deep copy (e.g. a control) gets an empty holder, so it builds its own
    wrapper; pickling keeps nothing.
    """

    __slots__ = ("ddp",)

    def __init__(self) -> None:
        self.ddp: nn.Module | None = None

    def __deepcopy__(self, memo: dict) -> _Wrapper:
        return _Wrapper()

    def __reduce__(self):
        return (_Wrapper, ())


_KEY = "_lotteryir_ddp"


def ddp_wrap(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel, built once per model object (a collective call).

    Pruning masks are buffers that every rank computes identically (the pruner
    verifies them); the pruner has put them on DDP's ignore list, so they are not
    re-broadcast at every forward. Other buffers (e.g. BatchNorm statistics) are
    still broadcast from rank 0, and with none left the per-forward sync is off.
    """
    if not is_distributed():
        return model
    holder = model.__dict__.get(_KEY)
    if holder is None:
        holder = _Wrapper()
        model.__dict__[_KEY] = holder
    if holder.ddp is None:
        from torch.nn.parallel import DistributedDataParallel

        ignored = set(getattr(model, "_ddp_params_and_buffers_to_ignore", ()))
        others = [name for name, _ in model.named_buffers() if name not in ignored]
        ids = [device.index] if device.type == "cuda" else None
        # torch >= 2.14 renamed broadcast_buffers (per-forward buffer sync) to forward_sync_buffers.
        sync = (
            "forward_sync_buffers"
            if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            else "broadcast_buffers"
        )
        holder.ddp = DistributedDataParallel(
            model,
            device_ids=ids,
            find_unused_parameters=find_unused_parameters,
            **{sync: bool(others)},  # type: ignore[arg-type]  # the keyword is chosen by name above
        )
    return holder.ddp
