"""A small registry of restoration networks: names, sizes and builders."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar, overload

import torch
from torch import nn

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)


@dataclass(frozen=True)
class ModelInfo:
    """One registered (model, size) pair as listed by `available()`."""

    name: str
    size: str
    params: int
    description: str


@dataclass
class _Entry:
    builder: Builder
    description: str
    # Filled lazily from a meta-device build: listing and checkpoint guessing stay cheap.
    signature: dict[str, tuple[int, ...]] | None = None
    params: int = 0


_REGISTRY: dict[str, dict[str, _Entry]] = {}


@overload
def register_model(name: str, size: str = ..., builder: None = ..., *, description: str = ...,
                   overwrite: bool = ...) -> Callable[[B], B]: ...
@overload
def register_model(name: str, size: str = ..., builder: B = ..., *, description: str = ...,
                   overwrite: bool = ...) -> B: ...


def register_model(name: str, size: str = "full", builder: Builder | None = None, *,
                   description: str = "", overwrite: bool = False):
    """Register `builder(**kwargs) -> nn.Module` as model `name` at `size`.

    Use as a function, `register_model("mynet", "small", build_small)`, or as a
    decorator, `@register_model("mynet", "small")`. The builder must construct its
    parameters on the current default device (no explicit `device=`), so the registry
    can count parameters on the meta device without allocating memory.
    """
    def add(fn: B) -> B:
        sizes_of = _REGISTRY.setdefault(name, {})
        if size in sizes_of and not overwrite:
            raise ValueError(f"model {name!r} size {size!r} is already registered "
                             "(pass overwrite=True to replace it)")
        doc = (fn.__doc__ or "").strip()
        sizes_of[size] = _Entry(fn, description or (doc.splitlines()[0] if doc else ""))
        return fn

    return add if builder is None else add(builder)


def model_names() -> list[str]:
    """Names of all registered models (installed packages' entry points included), in registration order."""
    from .external import load_entry_points

    load_entry_points()
    return list(_REGISTRY)


def sizes(name: str) -> list[str]:
    """Registered sizes of model `name`, in registration order."""
    return list(_entries(name))


def build_model(name: str, size: str | None = None, **kwargs) -> nn.Module:
    """Build a freshly initialised model; `kwargs` override fields of the size's config.

    `name` may also be an import path, ``package.module:factory`` or
    ``path/to/file.py:factory`` (size ``default``), or a model an installed package
    registers under the ``lotteryir.models`` entry point. `size=None` means
    ``full``, or the model's only size.
    """
    size = default_size(name, "full") if size is None else size
    model = _entry(name, size).builder(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {name!r} (size {size!r}) was built as a {type(model).__name__}, not an nn.Module")
    return model


def default_size(name: str, preferred: str) -> str:
    """``preferred`` when model ``name`` has that size, else its only size (so one-size models need none)."""
    entries = _entries(name)
    return next(iter(entries)) if preferred not in entries and len(entries) == 1 else preferred


def available() -> list[ModelInfo]:
    """Every registered (name, size) with its parameter count."""
    model_names()  # installed packages' entry points
    return [
        ModelInfo(name, size, _measured(entry).params, entry.description)
        for name, sizes_of in _REGISTRY.items()
        for size, entry in sizes_of.items()
    ]


def signature(name: str, size: str) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes of a registered size, in order."""
    return _measured(_entry(name, size)).signature  # type: ignore[return-value]


def _measured(entry: _Entry) -> _Entry:
    if entry.signature is None:
        try:
            with torch.device("meta"):
                model = entry.builder()
        except Exception:  # a user builder that needs real tensors (e.g. custom init): pay for one real build
            model = entry.builder()
        entry.signature = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        entry.params = sum(p.numel() for p in model.parameters())
    return entry


def _entries(name: str) -> dict[str, _Entry]:
    if name not in _REGISTRY:
        from .external import is_import_path, register_import_path

        if is_import_path(name):
            register_import_path(name)
        elif name not in model_names():
            raise ValueError(f"unknown model {name!r}; choose one of {model_names()}, or name your own as "
                             "package.module:factory or path/to/file.py:factory")
    return _REGISTRY[name]


def _entry(name: str, size: str) -> _Entry:
    entries = _entries(name)
    if size not in entries:
        raise ValueError(f"unknown size {size!r} for model {name!r}; choose one of {list(entries)}")
    return entries[size]
