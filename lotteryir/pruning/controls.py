"""Controls for a ticket: random reinitialization and random pruning.

``random_reinit`` must start from weights the ticket never saw. Two ways to get them:

- a ``factory`` (``() -> nn.Module``) that builds the model afresh: everything its constructor
  draws (prompts, temperatures, norm scales, buffers) is drawn again under the control's seed and
  copied in. The CLI and runs pass one for every registered model.
- an ``init_fn`` (default: every module's ``reset_parameters()``) run in place. Tensors that no
  module re-initializes (a bare ``nn.Parameter``, a custom norm without ``reset_parameters``) would
  silently keep their trained values, so :func:`check_reinit` finds them by name first and the
  pruner refuses to start with them.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import torch
from torch import nn

from . import bridge, distributed
from .mask import MASK_SUFFIX, ORIG_SUFFIX, Mask
from .selection import PrunableParam
from .strategies import random_mask_like

InitFn = Callable[[nn.Module], None]
ModelFactory = Callable[[], nn.Module]
CONTROLS = ("random_reinit", "random_prune")


class ReinitError(ValueError):
    """``random_reinit`` cannot re-draw some tensors; the message names them."""


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
                # Both registered: the swap above only took modules holding the pair.
                orig = cast(torch.Tensor, module._parameters[attr + ORIG_SUFFIX])
                module.__dict__[attr] = orig * cast(torch.Tensor, module._buffers[attr + MASK_SUFFIX])


def default_init(model: nn.Module) -> None:
    """Call ``reset_parameters()`` on every submodule that has one (torch's own initializers)."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def _state_tensors(model: nn.Module, buffers: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
    """(plain name, tensor) for every parameter and floating buffer; ``<w>_orig`` is named ``<w>``, masks skipped."""
    for name, p in model.named_parameters(remove_duplicate=True):
        yield (name[: -len(ORIG_SUFFIX)] if name.endswith(ORIG_SUFFIX) else name), p
    if buffers:
        for name, b in model.named_buffers(remove_duplicate=True):
            if not name.endswith(MASK_SUFFIX) and b.is_floating_point():
                yield name, b


def _init_in_place(model: nn.Module, init_fn: InitFn | None) -> list[str]:
    """Run ``init_fn`` on NaN-filled parameters; returns the parameters it left (partly) unwritten.

    Floating buffers the initializer does not write (constant tables, say) keep their values:
    they are not trained, so keeping them is what a fresh model would have.
    """
    kept = {
        name: b.clone() for name, b in model.named_buffers() if not name.endswith(MASK_SUFFIX) and b.is_floating_point()
    }
    with torch.no_grad():
        for _, t in _state_tensors(model):
            t.fill_(float("nan"))
        with _weights_as_parameters(model):
            (init_fn or default_init)(model)
        for name, b in model.named_buffers():
            if name in kept and torch.isnan(b).any():
                b.copy_(kept[name])
    return [name for name, t in _state_tensors(model, buffers=False) if torch.isnan(t).any()]


def check_reinit(model: nn.Module, init_fn: InitFn | None = None) -> list[str]:
    """Names of parameters that ``init_fn`` leaves (partly) untouched, found on a NaN-filled copy."""
    return _init_in_place(copy.deepcopy(model), init_fn)


def _copy_from_fresh(model: nn.Module, fresh: nn.Module) -> None:
    mine = dict(_state_tensors(model))
    theirs = dict(_state_tensors(fresh))
    missing, extra = sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))
    if missing or extra:
        raise ReinitError(
            "the model factory builds a different network: "
            + "; ".join(
                p
                for p in (
                    f"missing {', '.join(missing[:5])}" if missing else "",
                    f"unexpected {', '.join(extra[:5])}" if extra else "",
                )
                if p
            )
        )
    for name, t in mine.items():
        if theirs[name].shape != t.shape:
            raise ReinitError(
                f"the model factory builds {name} with shape {tuple(theirs[name].shape)}, "
                f"the model has {tuple(t.shape)}"
            )
    with torch.no_grad(), _weights_as_parameters(model):  # leaving it recomputes masked weights
        for name, t in mine.items():
            t.copy_(theirs[name].to(device=t.device, dtype=t.dtype))


def reinitialize(
    model: nn.Module, seed: int, init_fn: InitFn | None = None, factory: ModelFactory | None = None
) -> None:
    """Re-draw every parameter and floating buffer of ``model`` in place under ``seed``, keeping its masks.

    With ``factory`` the values come from a freshly built model; otherwise ``init_fn`` (default:
    ``reset_parameters()`` everywhere) runs in place and a :class:`ReinitError` names any parameter
    it did not write, rather than letting trained values pass as a fresh initialization.
    """
    devices = [p.device for p in model.parameters() if p.device.type == "cuda"]
    with torch.random.fork_rng(devices=sorted({d.index or 0 for d in devices}) if devices else []):
        torch.manual_seed(seed)
        if factory is not None:
            _copy_from_fresh(model, factory())
            return
        untouched = _init_in_place(model, init_fn)
    if untouched:
        raise ReinitError(untouched_message(untouched))


def untouched_message(names: list[str]) -> str:
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    return (
        f"random_reinit cannot re-draw {', '.join(names[:8])}{more}: no reset_parameters() writes them. "
        "Pass model_factory= (a function that builds the model afresh) or an init_fn= that sets them."
    )


def check_controls(
    controls: Sequence[str], model: nn.Module, init_fn: InitFn | None, factory: ModelFactory | None
) -> tuple[str, ...]:
    """``controls`` as a tuple; unknown names are refused, and so is a ``random_reinit`` that
    ``init_fn`` could not draw afresh (found before any training, not at round 1)."""
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise ValueError(f"unknown control(s) {unknown}; choose from {', '.join(CONTROLS)}")
    if "random_reinit" in controls and factory is None:
        untouched = check_reinit(model, init_fn)
        if untouched:
            raise ReinitError(untouched_message(untouched))
    return tuple(controls)


def make_control(
    model: nn.Module,
    kind: str,
    seed: int,
    params_of: Callable[[nn.Module], list[PrunableParam]],
    mask: Mask,
    level: int,
    rewind: Callable[[nn.Module], None] | None = None,
    init_fn: InitFn | None = None,
    factory: ModelFactory | None = None,
) -> nn.Module:
    """A copy of ``model`` for a control at ``mask`` (over the pruned tensors), ready to train.

    ``random_reinit``: the ticket's mask on a fresh, seeded initialization.
    ``random_prune``: a random mask with the ticket's per-tensor survivor counts, then
    ``rewind(copy)`` writes the rewind point (None keeps the current weights).
    ``params_of`` finds a model's prunable tensors as the pruner does.
    """
    if kind not in CONTROLS:
        raise ValueError(f"unknown control {kind!r}; choose from {', '.join(CONTROLS)}")
    control = copy.deepcopy(model)
    by_name = {p.name: p for p in params_of(control)}
    if kind == "random_reinit":
        reinitialize(control, seed, init_fn, factory)
        bridge.attach_masks(control, [by_name[n] for n in mask], mask)
    else:
        random = random_mask_like(mask, seed=seed)
        bridge.attach_masks(control, [by_name[n] for n in mask], random)
        if rewind is not None:  # after the mask: entries the random mask keeps get their values
            rewind(control)
        distributed.verify_masks_agree(random, level, what="random_prune control")
    return control
