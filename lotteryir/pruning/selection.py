"""Which parameters are prunable: module types, globs on names, tied weights."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .mask import ORIG_SUFFIX

DEFAULT_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)
"""Module types whose ``weight`` is prunable by default: convolutions (1d/2d/3d, transposed) and Linear."""


@dataclass(frozen=True)
class PrunableParam:
    """One prunable tensor: its canonical name and every (module, attribute) that holds it.

    A tied weight (one Parameter held by several modules) has one name and
    several owners; all owners share one mask.
    """

    name: str
    owners: tuple[tuple[str, nn.Module, str], ...] = field(compare=False)

    @property
    def module(self) -> nn.Module:
        return self.owners[0][1]

    @property
    def attr(self) -> str:
        return self.owners[0][2]


def _current_param(module: nn.Module, attr: str) -> torch.Tensor | None:
    """The trainable tensor behind ``module.attr``, whether masked (``attr_orig``) or not."""
    p = module._parameters.get(attr + ORIG_SUFFIX)
    if p is None:
        p = module._parameters.get(attr)
    return p


def find_prunable(
    model: nn.Module,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    module_types: Sequence[type[nn.Module]] | None = None,
    attr: str = "weight",
) -> list[PrunableParam]:
    """The prunable tensors of ``model`` in registration order.

    By default the ``weight`` of every Conv1d/2d/3d, ConvTranspose1d/2d/3d and
    Linear module; ``include`` globs (on full parameter names) add any other
    parameter, ``exclude`` globs remove. A pattern that matches nothing is an
    error: it is almost always a typo.
    """
    types = tuple(module_types) if module_types is not None else DEFAULT_MODULE_TYPES
    include = list(include or [])
    exclude = list(exclude or [])
    seen: dict[int, int] = {}  # id(Parameter) -> index in out
    owners: list[list[tuple[str, nn.Module, str]]] = []
    names: list[str] = []
    hit_include = {p: False for p in include}
    hit_exclude = {p: False for p in exclude}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for pname in list(module._parameters) + [
            k[: -len(ORIG_SUFFIX)] for k in module._parameters if k.endswith(ORIG_SUFFIX)
        ]:
            if pname.endswith(ORIG_SUFFIX):
                continue
            p = _current_param(module, pname)
            if p is None:
                continue
            full = f"{mod_name}.{pname}" if mod_name else pname
            wanted = isinstance(module, types) and pname == attr
            for pat in include:
                if fnmatch.fnmatchcase(full, pat):
                    hit_include[pat] = True
                    wanted = True
            for pat in exclude:
                if fnmatch.fnmatchcase(full, pat):
                    hit_exclude[pat] = True
                    wanted = False
            if not wanted:
                continue
            if id(p) in seen:
                # A tied weight, or a module registered under two names: one mask, many owners.
                mine = owners[seen[id(p)]]
                if not any(m is module and a == pname for _, m, a in mine):
                    mine.append((mod_name, module, pname))
                continue
            seen[id(p)] = len(names)
            names.append(full)
            owners.append([(mod_name, module, pname)])
    unused = [p for p, hit in {**hit_include, **hit_exclude}.items() if not hit]
    if unused:
        raise ValueError(f"pattern(s) matched no parameter of the model: {', '.join(map(repr, unused))}")
    return [PrunableParam(n, tuple(o)) for n, o in zip(names, owners)]


def select_prunable(
    model: nn.Module,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    module_types: Sequence[type[nn.Module]] | None = None,
) -> list[str]:
    """Names of the prunable parameters of ``model`` (see :func:`find_prunable`)."""
    return [p.name for p in find_prunable(model, include, exclude, module_types)]


def compiled_wrappers(model: nn.Module, itself: str = "the model itself") -> list[str]:
    """Names of the ``torch.compile`` wrappers (``OptimizedModule``) in ``model`` (``itself`` for the root)."""
    return [name or itself for name, sub in model.named_modules() if hasattr(sub, "_orig_mod")]


def refuse_compiled_wrapper(model: nn.Module) -> None:
    """Refuse a ``torch.compile`` wrapper (``OptimizedModule``) anywhere in ``model``.

    Its parameters are named ``_orig_mod.…``: masks, rewind points and tickets would carry names the
    network itself does not have, so a ticket would not load into it.
    """
    wrapped = compiled_wrappers(model)
    if wrapped:
        raise TypeError(
            f"the pruner got a torch.compile wrapper ({', '.join(wrapped[:3])}), whose parameter names carry "
            "'_orig_mod.' and would not load back into your network: give the pruner the network itself and "
            "compile it in place (model.compile()), before or after creating the pruner"
        )
