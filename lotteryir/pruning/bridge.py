"""The bridge to torch.nn.utils.prune: attach, update, read, rewind and remove masks.

Masks follow torch's convention: the trainable tensor lives in ``<attr>_orig``,
the mask in the buffer ``<attr>_mask``, and a forward pre-hook (a
``torch.nn.utils.prune.BasePruningMethod``, so ``prune.is_pruned`` and
``prune.remove`` work) recomputes ``<attr> = <attr>_orig * <attr>_mask``.

Three choices differ from torch's defaults, all measured (benchmarks/mask_overhead.py,
benchmarks/compile_graph_breaks.py):

- Masks are ``bool`` buffers, not copies of the weight's dtype: a quarter of
  the memory and of the state dict's mask bytes. torch's own ``apply_mask``
  converts them on the fly, so ``prune.remove`` still works.
- The hooks are written for torch.compile: the pre-hook sets the attribute with
  ``setattr`` and the post-forward hook detaches it unconditionally (reading
  ``.grad_fn`` would break the graph at every masked module).
- Where dynamo falls back to eager (a graph break it cannot resume from, such as
  NAFNet's custom autograd ``LayerNorm2d``), it would compile every hook, and the
  ``forward`` of every torch.nn module that has a hook, as graphs of their own:
  one multiply or one conv each, more graphs than the dense network and slower
  than eager. Those frames are marked "run eagerly when not inside a traced
  frame" (``_run_eagerly_on_fallback``), which is what dynamo does for the dense
  network; traced frames still inline them, so no graph changes.

Masks are updated *in place*, so the parameter set never changes once attached
(optimizers and DistributedDataParallel built before a pruning round stay valid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import CodeType
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils import prune

from .mask import MASK_SUFFIX, ORIG_SUFFIX, Mask
from .selection import PrunableParam

set_code_exec_strategy: Callable[[CodeType, Any], None] | None
try:  # torch's C-level frame switch: cheap to import (torch._dynamo itself takes seconds) and to call
    from torch._C._dynamo.eval_frame import _FrameAction, _FrameExecStrategy, set_code_exec_strategy

    _EAGER_ON_FALLBACK = _FrameExecStrategy(_FrameAction.SKIP, _FrameAction.DEFAULT)
except (ImportError, AttributeError):  # another torch: graph counts as torch makes them, nothing breaks
    set_code_exec_strategy = None


def _run_eagerly_on_fallback(code: CodeType | None) -> None:
    """Dynamo never compiles ``code`` as a frame of its own; a traced frame that calls it still inlines it.

    The same as ``torch._dynamo.eval_frame.skip_code``. Only the frame itself is
    skipped (what it calls is decided as usual).
    """
    if code is not None and set_code_exec_strategy is not None:
        set_code_exec_strategy(code, _EAGER_ON_FALLBACK)


def _inbuilt_forward(module: nn.Module) -> CodeType | None:
    """The code of ``module``'s forward when dynamo would compile it for having hooks (torch.nn classes only)."""
    cls = type(module)
    if not cls.__module__.startswith(("torch.nn.", "torch.ao.")):
        return None  # user classes: dynamo compiles their frames with or without hooks, dense alike
    return getattr(cls.forward, "__code__", None)


class _FixedMask(prune.BasePruningMethod):
    """The forward pre-hook of one masked tensor; its mask is the buffer lotteryir updates in place."""

    PRUNING_TYPE = "unstructured"
    _inbuilt = False  # hooks pickled before the flag existed

    def __init__(self, name: str, inbuilt: bool = False) -> None:
        self._tensor_name = name
        self._inbuilt = inbuilt  # a flag, not the code object: hooks must stay picklable (torch.save(model))

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        # Only reached when torch.nn.utils.prune stacks another method on top of ours.
        return default_mask

    def __call__(self, module: nn.Module, inputs) -> None:
        name = self._tensor_name
        # Registered by _install before this hook (casts, not helper calls: no extra frame for dynamo).
        orig = cast(torch.Tensor, module._parameters[name + ORIG_SUFFIX])
        value = orig * cast(torch.Tensor, module._buffers[name + MASK_SUFFIX])
        if torch.compiler.is_compiling():
            setattr(module, name, value)  # traced as a plain side effect (a __dict__ write breaks the graph)
        else:
            module.__dict__[name] = value
            # Again at every eager call (about a microsecond): torch._dynamo.reset() forgets the mark.
            if self._inbuilt:
                _run_eagerly_on_fallback(type(module).forward.__code__)


class _DetachAfterForward:
    """Post-forward hook: leave each masked attribute as a detached tensor.

    torch issue 37322: after a forward with grad enabled, ``module.weight`` is a
    non-leaf tensor and ``copy.deepcopy(model)`` fails. The autograd graph already
    holds what backward needs, so the attribute can be a detached view.
    """

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, module: nn.Module, inputs, output) -> None:
        for name in self.names:
            _set(module, name, getattr(module, name).detach())


def _set(module: nn.Module, name: str, value: torch.Tensor) -> None:
    # torch.compile traces setattr as a plain side effect (a __dict__ write breaks the graph);
    # eager mode skips nn.Module.__setattr__'s checks, which add up over every masked module.
    if torch.compiler.is_compiling():
        setattr(module, name, value)
    else:
        module.__dict__[name] = value


for _code in (_FixedMask.__call__.__code__, _DetachAfterForward.__call__.__code__, _set.__code__):
    _run_eagerly_on_fallback(_code)


def _is_attached(module: nn.Module, attr: str) -> bool:
    return attr + ORIG_SUFFIX in module._parameters and attr + MASK_SUFFIX in module._buffers


def _param(module: nn.Module, key: str) -> nn.Parameter:
    """The parameter registered under ``key`` (torch allows a None slot; a prunable weight never is one)."""
    return cast(nn.Parameter, module._parameters[key])


def _buffer(module: nn.Module, key: str) -> torch.Tensor:
    """A buffer ``module`` registered under ``key`` as a tensor (a mask buffer: never None)."""
    return cast(torch.Tensor, module._buffers[key])


@torch.no_grad()
def _settle(p: PrunableParam, value: torch.Tensor | None = None) -> None:
    """Write ``value * mask`` (or zero the pruned entries) into ``_orig``; point every owner's attribute at it.

    With zeros at pruned entries ``_orig`` equals ``orig * mask``, so ``module.attr``
    can be a view of it until the next forward recomputes it; and the next pruning
    skips a masking pass (``pruned_are_zero`` in strategies.py). The forward pre-hook
    still multiplies by the mask, so correctness never depends on these zeros.
    """
    orig, buf = _orig(p), cast(torch.Tensor, mask_buffer(p))  # callers settle attached tensors only
    if value is not None:
        torch.mul(value.to(orig.device), buf, out=orig)  # the write and the zeros in one pass
    else:
        orig.mul_(buf)
    for _, mod, attr in p.owners:
        mod.__dict__[attr] = orig.detach()


def _install(module: nn.Module, attr: str, mask: torch.Tensor) -> None:
    """Reparametrize ``module.attr`` as ``attr_orig * attr_mask`` the way torch.nn.utils.prune does."""
    params = module._parameters
    # Rename in place, so ``<attr>_orig`` keeps ``attr``'s position (exported state dicts keep the key order).
    renamed = [(attr + ORIG_SUFFIX if key == attr else key, value) for key, value in params.items()]
    params.clear()
    params.update(renamed)
    module.register_buffer(attr + MASK_SUFFIX, mask.to(torch.bool))
    forward_code = _inbuilt_forward(module)
    _run_eagerly_on_fallback(forward_code)
    module.register_forward_pre_hook(_FixedMask(attr, forward_code is not None))
    post = next((h for h in module._forward_hooks.values() if isinstance(h, _DetachAfterForward)), None)
    if post is None:
        post = _DetachAfterForward()
        module.register_forward_hook(post)
    post.names.append(attr)


def attach_masks(
    model: nn.Module,
    params: Iterable[PrunableParam],
    mask: Mask | None = None,
    values: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Attach (or update in place) masks on ``params``; ``mask=None`` attaches all-ones masks.

    Pruned entries of ``<attr>_orig`` are set to zero. ``values`` (name -> tensor),
    when given, are written into the survivors in the same pass (a rewind).
    """
    params = list(params)
    if mask is not None:
        shapes = {p.name: tuple(_orig(p).shape) for p in params}
        mask.check_against(shapes)
    for p in params:
        first_mod, first_attr = p.owners[0][1], p.owners[0][2]
        value = mask[p.name] if mask is not None else None
        if _is_attached(first_mod, first_attr):
            if value is not None:
                _buffer(first_mod, first_attr + MASK_SUFFIX).copy_(value)
        else:
            orig = _param(first_mod, first_attr)
            m = value if value is not None else torch.ones(orig.shape, dtype=torch.bool)
            _install(first_mod, first_attr, m.to(orig.device))
        shared = _buffer(first_mod, first_attr + MASK_SUFFIX)
        for _, mod, attr in p.owners[1:]:
            if not _is_attached(mod, attr):
                _install(mod, attr, torch.ones(shared.shape, dtype=torch.bool, device=shared.device))
            # Tied weight: every owner reads the very same mask tensor.
            mod._buffers[attr + MASK_SUFFIX] = shared
        _settle(p, values.get(p.name) if values is not None else None)


def _orig(p: PrunableParam) -> torch.Tensor:
    mod, attr = p.module, p.attr
    t = mod._parameters.get(attr + ORIG_SUFFIX)
    return t if t is not None else _param(mod, attr)


def trainable_tensor(p: PrunableParam) -> torch.Tensor:
    """The Parameter an optimizer updates for ``p`` (``<attr>_orig`` once attached)."""
    return _orig(p)


def mask_buffer(p: PrunableParam) -> torch.Tensor | None:
    """The live mask buffer of ``p`` (None when unmasked). Updated in place: clone before keeping it."""
    return p.module._buffers.get(p.attr + MASK_SUFFIX)


def current_mask(params: Iterable[PrunableParam]) -> Mask:
    """Read the attached masks (copies; all-ones for tensors without one)."""
    out = {}
    for p in params:
        buf = mask_buffer(p)
        if buf is None:
            out[p.name] = torch.ones(_orig(p).shape, dtype=torch.bool)
        else:
            out[p.name] = buf.clone() if buf.dtype == torch.bool else buf != 0
    return Mask(out)


def effective_weights(params: Iterable[PrunableParam]) -> dict[str, torch.Tensor]:
    """``orig * mask`` per prunable tensor, detached: the weights the network computes with."""
    out = {}
    with torch.no_grad():
        for p in params:
            buf = mask_buffer(p)
            out[p.name] = _orig(p).detach() * buf if buf is not None else _orig(p).detach()
    return out


@torch.no_grad()
def write_weights(params: Iterable[PrunableParam], values: Mapping[str, torch.Tensor]) -> None:
    """Write ``values`` into the trainable tensors (``<attr>_orig``), never into ``<attr>``.

    Writing into ``weight`` would be overwritten by the next forward pre-hook:
    the bug that made some rewinding implementations reset nothing. Pruned
    entries stay zero.
    """
    for p in params:
        if p.name not in values:
            continue
        if mask_buffer(p) is None:
            _orig(p).copy_(values[p.name].to(_orig(p).device))
        else:
            _settle(p, values[p.name])


def export_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A plain state dict (no ``_orig``/``_mask`` keys) that loads strictly into an unpruned model.

    Every tensor is a contiguous copy (safetensors refuses the strided tensors of
    a ``channels_last`` model).
    """
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(ORIG_SUFFIX) and key[: -len(ORIG_SUFFIX)] + MASK_SUFFIX in sd:
            base = key[: -len(ORIG_SUFFIX)]
            out[base] = (value.detach() * sd[base + MASK_SUFFIX]).contiguous()
        elif key.endswith(MASK_SUFFIX) and key[: -len(MASK_SUFFIX)] + ORIG_SUFFIX in sd:
            continue
        else:
            out[key] = value.detach().clone(memory_format=torch.contiguous_format)
    return out


def remove_masks(params: Iterable[PrunableParam]) -> None:
    """Make pruning permanent: each weight becomes a plain Parameter holding ``orig * mask``."""
    for p in params:
        if not _is_attached(p.module, p.attr):
            continue
        with torch.no_grad():
            fused = nn.Parameter((_orig(p) * _buffer(p.module, p.attr + MASK_SUFFIX)).detach().clone())
        for _, mod, attr in p.owners:
            for key in [k for k, h in mod._forward_pre_hooks.items() if getattr(h, "_tensor_name", None) == attr]:
                del mod._forward_pre_hooks[key]
            for key, hook in list(mod._forward_hooks.items()):
                if isinstance(hook, _DetachAfterForward) and attr in hook.names:
                    hook.names.remove(attr)
                    if not hook.names:
                        del mod._forward_hooks[key]
            del mod._buffers[attr + MASK_SUFFIX]
            mod.__dict__.pop(attr, None)
            store = mod._parameters
            renamed = [
                (attr if key == attr + ORIG_SUFFIX else key, fused if key == attr + ORIG_SUFFIX else value)
                for key, value in store.items()
            ]
            store.clear()
            store.update(renamed)
