"""The bridge to torch.nn.utils.prune: attach, update, read, rewind and remove masks.

Masks follow torch's convention: the trainable tensor lives in ``<attr>_orig``,
the mask in the buffer ``<attr>_mask`` (the weight's dtype, as torch makes it),
and a forward pre-hook recomputes ``<attr> = <attr>_orig * <attr>_mask``.
Masks are updated *in place*, so the parameter set never changes once attached
(optimizers and DistributedDataParallel built before a pruning round stay valid).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import prune

from .mask import MASK_SUFFIX, ORIG_SUFFIX, Mask
from .selection import PrunableParam


class _FixedMask(prune.BasePruningMethod):
    """A pruning method whose mask is given, not computed (the hook torch installs)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, mask: torch.Tensor):
        self._given = mask

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        return self._given.to(device=default_mask.device, dtype=default_mask.dtype)

    def __call__(self, module: nn.Module, inputs) -> None:  # forward pre-hook
        setattr(module, self._tensor_name, self.apply_mask(module))

    def __getstate__(self):
        # The given mask is only needed once, at attach time; don't carry it into copies.
        state = dict(self.__dict__)
        state.pop("_given", None)
        return state


def _detach_after_forward(module: nn.Module, inputs, output) -> None:
    # torch issue 37322: after a forward with grad enabled, ``module.weight`` is a
    # non-leaf tensor and copy.deepcopy(model) fails. The autograd graph already
    # holds what backward needs, so the attribute can safely be a detached view.
    for name, hook in module._forward_pre_hooks.items():
        tname = getattr(hook, "_tensor_name", None)
        if tname is not None:
            value = module.__dict__.get(tname)
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                module.__dict__[tname] = value.detach()


def _is_attached(module: nn.Module, attr: str) -> bool:
    return attr + ORIG_SUFFIX in module._parameters and attr + MASK_SUFFIX in module._buffers


def _refresh(module: nn.Module, attr: str) -> None:
    with torch.no_grad():
        value = getattr(module, attr + ORIG_SUFFIX) * getattr(module, attr + MASK_SUFFIX)
    module.__dict__[attr] = value


def _install(module: nn.Module, attr: str, mask: torch.Tensor) -> None:
    """Attach a fixed mask to ``module.attr`` the way torch.nn.utils.prune does."""
    order = list(module._parameters)
    _FixedMask.apply(module, attr, mask)
    # torch.nn.utils.prune appends ``<attr>_orig`` at the end of _parameters; put it
    # back where ``attr`` was so exported state dicts keep the model's key order.
    _reorder(module, order, {attr: attr + ORIG_SUFFIX})
    if not getattr(module, "_lotteryir_detach_hook", False):
        module.register_forward_hook(_detach_after_forward)
        module._lotteryir_detach_hook = True


def _reorder(module: nn.Module, order: list[str], renamed: Mapping[str, str]) -> None:
    params = module._parameters
    new = {renamed.get(k, k): params[renamed.get(k, k)] for k in order if renamed.get(k, k) in params}
    for key, value in params.items():
        new.setdefault(key, value)
    params.clear()
    params.update(new)


def attach_masks(model: nn.Module, params: Iterable[PrunableParam], mask: Mask | None = None) -> None:
    """Attach (or update in place) masks on ``params``; ``mask=None`` attaches all-ones masks."""
    params = list(params)
    if mask is not None:
        shapes = {p.name: tuple(_orig(p).shape) for p in params}
        mask.check_against(shapes)
    for p in params:
        first_mod, first_attr = p.owners[0][1], p.owners[0][2]
        value = mask[p.name] if mask is not None else None
        if _is_attached(first_mod, first_attr):
            if value is not None:
                first_mod._buffers[first_attr + MASK_SUFFIX].copy_(value)  # copy_ converts bool -> float
        else:
            orig = first_mod._parameters[first_attr]
            m = value if value is not None else torch.ones(orig.shape, dtype=torch.bool)
            _install(first_mod, first_attr, m.to(orig.device))
        shared = first_mod._buffers[first_attr + MASK_SUFFIX]
        for _, mod, attr in p.owners[1:]:
            if not _is_attached(mod, attr):
                _install(mod, attr, torch.ones(shared.shape, dtype=torch.bool, device=shared.device))
            # Tied weight: every owner reads the very same mask tensor.
            mod._buffers[attr + MASK_SUFFIX] = shared
        for _, mod, attr in p.owners:
            _refresh(mod, attr)


def _orig(p: PrunableParam) -> torch.Tensor:
    mod, attr = p.module, p.attr
    t = mod._parameters.get(attr + ORIG_SUFFIX)
    return t if t is not None else mod._parameters[attr]


def trainable_tensor(p: PrunableParam) -> torch.Tensor:
    """The Parameter an optimizer updates for ``p`` (``<attr>_orig`` once attached)."""
    return _orig(p)


def current_mask(params: Iterable[PrunableParam]) -> Mask:
    """Read the attached masks (all-ones for tensors without one)."""
    out = {}
    for p in params:
        buf = p.module._buffers.get(p.attr + MASK_SUFFIX)
        out[p.name] = buf != 0 if buf is not None else torch.ones(_orig(p).shape, dtype=torch.bool)
    return Mask(out)


def effective_weights(params: Iterable[PrunableParam]) -> dict[str, torch.Tensor]:
    """``orig * mask`` per prunable tensor, detached: the weights the network computes with."""
    out = {}
    with torch.no_grad():
        for p in params:
            buf = p.module._buffers.get(p.attr + MASK_SUFFIX)
            out[p.name] = _orig(p).detach() * buf if buf is not None else _orig(p).detach()
    return out


@torch.no_grad()
def write_weights(params: Iterable[PrunableParam], values: Mapping[str, torch.Tensor]) -> None:
    """Write ``values`` into the trainable tensors (``<attr>_orig``), never into ``<attr>``.

    Writing into ``weight`` would be overwritten by the next forward pre-hook:
    the bug that made some rewinding implementations reset nothing.
    """
    for p in params:
        if p.name in values:
            _orig(p).copy_(values[p.name].to(_orig(p).device))
            for _, mod, attr in p.owners:
                if _is_attached(mod, attr):
                    _refresh(mod, attr)


def export_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A plain state dict (no ``_orig``/``_mask`` keys) that loads strictly into an unpruned model."""
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(ORIG_SUFFIX) and key[: -len(ORIG_SUFFIX)] + MASK_SUFFIX in sd:
            base = key[: -len(ORIG_SUFFIX)]
            out[base] = (value * sd[base + MASK_SUFFIX]).detach().clone()
        elif key.endswith(MASK_SUFFIX) and key[: -len(MASK_SUFFIX)] + ORIG_SUFFIX in sd:
            continue
        else:
            out[key] = value.detach().clone()
    return out


def remove_masks(params: Iterable[PrunableParam]) -> None:
    """Make pruning permanent: each weight becomes a plain Parameter holding ``orig * mask``."""
    for p in params:
        if not _is_attached(p.module, p.attr):
            continue
        with torch.no_grad():
            fused = nn.Parameter((_orig(p) * p.module._buffers[p.attr + MASK_SUFFIX]).detach().clone())
        for _, mod, attr in p.owners:
            for key in [k for k, h in mod._forward_pre_hooks.items() if getattr(h, "_tensor_name", None) == attr]:
                del mod._forward_pre_hooks[key]
            order = list(mod._parameters)
            del mod._parameters[attr + ORIG_SUFFIX]
            del mod._buffers[attr + MASK_SUFFIX]
            mod.__dict__.pop(attr, None)
            mod.register_parameter(attr, fused)
            _reorder(mod, [attr if k == attr + ORIG_SUFFIX else k for k in order], {})
