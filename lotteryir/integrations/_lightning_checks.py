"""What :mod:`lotteryir.integrations.lightning` refuses or warns about, kept apart from the callback's flow.

Torch and the core only: Lightning objects are read by attribute, so importing this imports no framework.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from lotteryir.pruning.context import RoundContext
from lotteryir.pruning.mask import MASK_SUFFIX, ORIG_SUFFIX
from lotteryir.pruning.selection import compiled_wrappers


def missing_hooks(module: nn.Module) -> list[str]:
    """Masked tensors whose forward pre-hook (``w = w_orig * w_mask``) is gone."""
    missing = []
    for prefix, sub in module.named_modules():
        for key in sub._buffers:
            attr = key[: -len(MASK_SUFFIX)]
            if not key.endswith(MASK_SUFFIX) or attr + ORIG_SUFFIX not in sub._parameters:
                continue
            if not any(getattr(h, "_tensor_name", None) == attr for h in sub._forward_pre_hooks.values()):
                missing.append(f"{prefix}.{attr}" if prefix else attr)
    return missing


def refuse_compiled(model: nn.Module, what: str) -> None:
    """Refuse ``torch.compile`` wrappers: they rename every parameter (``_orig_mod.``) and hide the module."""
    wrapped = compiled_wrappers(model, "the module itself")
    if wrapped:
        raise TypeError(
            f"{what} is wrapped by torch.compile ({', '.join(wrapped[:3])}): the pruner and Lightning must hold "
            "the module itself, whose parameter names, hooks and checkpoint keys they share. Create the pruner on "
            "the LightningModule and compile in place instead: module.net.compile() (or module.compile()), "
            "which keeps the names and compiles the masks' hooks with the network"
        )


@contextmanager
def marks_skipped(ctx: RoundContext, steps: list[int]) -> Iterator[None]:
    """While ``ctx.step`` reports ``steps``, it takes no snapshot labelled with them."""
    saved = ctx.rewind_step, ctx.rewind_steps
    if ctx.rewind_step in steps:
        ctx.rewind_step = None
    ctx.rewind_steps = tuple(k for k in ctx.rewind_steps if k not in steps)
    try:
        yield
    finally:
        ctx.rewind_step, ctx.rewind_steps = saved


def warn_inside_batch(steps: list[int], before: int, now: int, ctx: RoundContext) -> None:
    """Rewind steps that one batch stepped over (several optimizer steps in a batch) cannot be snapshot."""
    what, rewind_step = [], ctx.rewind_step
    if rewind_step in steps and now in ctx.rewind_steps:  # the pruner keeps step `now` aside, not as the point
        what.append(f"rewind='step:{rewind_step}' gets no snapshot (step {now} is one of rewind_points)")
    elif rewind_step in steps:
        what.append(f"rewind='step:{rewind_step}' takes the weights after step {now} instead, recorded as step {now}")
    if kept := [k for k in steps if k != rewind_step]:
        what.append(f"rewind_points {kept} are not recorded")
    warnings.warn(
        f"one training batch moved the Trainer's global_step from {before} to {now} (under manual optimization "
        f"every optimizer.step() of every optimizer counts), past step(s) {steps}, whose weights never exist "
        f"between batches: {'; '.join(what)}. Choose steps the Trainer reaches at the end of a batch",
        UserWarning,
        stacklevel=3,
    )


def warn_shared_loggers(loggers: list[Any], previous: list[Any]) -> None:
    """Every fit counts its steps from 0: a logger kept across trainings draws each over the last."""
    shared = [type(lg).__name__ for lg in loggers if any(lg is old for old in previous)]
    if shared:
        warnings.warn(
            f"make_trainer gave this round's Trainer the previous training's {', '.join(shared)}: Lightning counts "
            "every fit's steps from 0, so each round's curves would lie over the last round's (and loggers that "
            "need increasing steps drop them). Build the logger inside make_trainer, one version per training: "
            "TensorBoardLogger('logs', name='imp', version=f'round{ctx.round}-{ctx.kind}')",
            UserWarning,
            stacklevel=3,
        )
