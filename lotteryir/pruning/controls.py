"""Controls for a ticket: random reinitialization and random pruning."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from .mask import MASK_SUFFIX, ORIG_SUFFIX

InitFn = Callable[[nn.Module], None]


@contextlib.contextmanager
def _weights_as_parameters(model: nn.Module):
    """Let ``reset_parameters()`` write into ``<attr>_orig`` of masked modules.

    Inside a masked module ``weight`` is a computed tensor; an initializer that
    writes into it changes nothing the next forward sees. Point the attribute at
    the real Parameter for the duration, then recompute ``orig * mask``.
    """
    swapped: list[tuple[nn.Module, str]] = []
    for module in model.modules():
        for key in list(module._parameters):
            if key.endswith(ORIG_SUFFIX) and key[: -len(ORIG_SUFFIX)] + MASK_SUFFIX in module._buffers:
                attr = key[: -len(ORIG_SUFFIX)]
                module.__dict__[attr] = module._parameters[key]
                swapped.append((module, attr))
    try:
        yield
    finally:
        with torch.no_grad():
            for module, attr in swapped:
                module.__dict__[attr] = module._parameters[attr + ORIG_SUFFIX] * module._buffers[attr + MASK_SUFFIX]


def default_init(model: nn.Module) -> None:
    """Call ``reset_parameters()`` on every submodule that has one (torch's own initializers).

    Parameters of modules without ``reset_parameters`` (e.g. learned prompts,
    attention temperatures) keep their values: pass your own ``init_fn`` when
    those must be re-drawn too.
    """
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def reinitialize(model: nn.Module, seed: int, init_fn: InitFn | None = None) -> None:
    """Re-draw ``model``'s weights in place with a seeded RNG, keeping any attached masks."""
    devices = [p.device for p in model.parameters() if p.device.type == "cuda"]
    with torch.random.fork_rng(devices=sorted({d.index or 0 for d in devices}) if devices else []):
        torch.manual_seed(seed)
        with torch.no_grad(), _weights_as_parameters(model):
            (init_fn or default_init)(model)
