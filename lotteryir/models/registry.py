"""A small registry of restoration networks: names, sizes and builders.

It is the one place that decides when code outside lotteryir is imported. Looking a
name up (building, listing, checking shapes) never imports anything: a network named
by import path exists only after :func:`register_import_path`, which the command line
calls for the ``--model`` a person typed. A name read from a file (a run's
config.json, a ticket's metadata) is therefore never imported, whichever command
reads it; :func:`refuse_from_file` turns that case into advice.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, overload

import torch
from torch import nn

from . import external

log = logging.getLogger(__name__)

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
_entry_points_loaded = False


class UnregisteredModelError(ValueError):
    """A network named by import path that nobody registered in this process (it is never imported implicitly)."""


@overload
def register_model(
    name: str, size: str = ..., builder: None = ..., *, description: str = ..., overwrite: bool = ...
) -> Callable[[B], B]: ...
@overload
def register_model(
    name: str, size: str = ..., builder: B = ..., *, description: str = ..., overwrite: bool = ...
) -> B: ...


def register_model(
    name: str, size: str = "full", builder: Builder | None = None, *, description: str = "", overwrite: bool = False
):
    """Register `builder(**kwargs) -> nn.Module` as model `name` at `size`.

    Use as a function, `register_model("mynet", "small", build_small)`, or as a
    decorator, `@register_model("mynet", "small")`. The builder must construct its
    parameters on the current default device (no explicit `device=`), so the registry
    can count parameters on the meta device without allocating memory.
    """

    def add(fn: B) -> B:
        sizes_of = _REGISTRY.setdefault(name, {})
        if size in sizes_of and not overwrite:
            raise ValueError(f"model {name!r} size {size!r} is already registered (pass overwrite=True to replace it)")
        doc = (fn.__doc__ or "").strip()
        sizes_of[size] = _Entry(fn, description or (doc.splitlines()[0] if doc else ""))
        return fn

    return add if builder is None else add(builder)


def register_import_path(name: str) -> str:
    """Import the factory that ``package.module:factory`` or ``path/to/file.py:factory`` names and register it.

    Call this only for a name a person gave (the command line does, for ``--model``): it runs the
    module's code. Returns the name it is registered under (a file path made absolute), size
    ``default``. A registered or built-in name is returned as it is.
    """
    if not external.is_import_path(name):
        return name
    canonical = external.canonical_name(name)
    if canonical not in _REGISTRY:
        factory = external.resolve_import_path(canonical)
        register_model(
            canonical,
            external.DEFAULT_SIZE,
            factory,
            description=external.description(factory, f"imported from {canonical}"),
            overwrite=True,
        )
    return canonical


def load_entry_points() -> None:
    """Register every model that installed packages declare in the ``lotteryir.models`` group (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in external.entry_points():
        if ep.name in _REGISTRY:
            continue  # built-in and explicitly registered models keep their name
        try:
            for size, builder, description in list(external.entry_point_builders(ep)):
                register_model(ep.name, size, builder, description=description, overwrite=True)
        except Exception as e:  # one broken plugin must not take the others (or the CLI) down
            log.warning("ignoring model entry point %s = %s: %s", ep.name, ep.value, e)


def refuse_from_file(name: str | None, source: str) -> None:
    """Raise unless ``name``, read from ``source`` (a file), names a network that is already registered.

    The check every command makes before it uses a model name it read from a file; lookups never
    import anyway, this only gives the advice.
    """
    if name and external.is_import_path(name) and external.canonical_name(name) not in _REGISTRY:
        raise UnregisteredModelError(
            f"{source} was made with model {name!r}. lotteryir does not import code named inside a file; "
            f"name the network yourself: --model {name}"
        )


def model_names() -> list[str]:
    """Names of all registered models (installed packages' entry points included), in registration order."""
    load_entry_points()
    return list(_REGISTRY)


def sizes(name: str) -> list[str]:
    """Registered sizes of model `name`, in registration order."""
    return list(_entries(name))


def build_model(name: str, size: str | None = None, **kwargs) -> nn.Module:
    """Build a freshly initialised model; `kwargs` override fields of the size's config.

    `name` may also be a model an installed package registers under the
    ``lotteryir.models`` entry point, or an import path registered earlier with
    :func:`register_import_path` (size ``default``). `size=None` means ``full``,
    or the model's only size.
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
            # A builder that loads its own weights would warn once per tensor that copying into a meta
            # tensor does nothing: true and expected here, where only the shapes are wanted.
            with torch.device("meta"), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*copying from a non-meta parameter")
                model = entry.builder()
        except Exception:  # a user builder that needs real tensors (e.g. custom init): pay for one real build
            model = entry.builder()
        entry.signature = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        entry.params = sum(p.numel() for p in model.parameters())
    return entry


def _entries(name: str) -> dict[str, _Entry]:
    """The sizes of a registered model. Never imports: an unregistered import path is refused."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if external.is_import_path(name):
        canonical = external.canonical_name(name)
        if canonical in _REGISTRY:
            return _REGISTRY[canonical]
        raise UnregisteredModelError(
            f"model {name!r} is named by import path but was not registered in this process; lotteryir imports a "
            f"module only when you name it: pass --model {name} on the command line, or call "
            f"lotteryir.models.register_import_path({name!r}) in Python"
        )
    if name not in model_names():
        raise ValueError(
            f"unknown model {name!r}; choose one of {model_names()}, or name your own as "
            "package.module:factory or path/to/file.py:factory"
        )
    return _REGISTRY[name]


def _entry(name: str, size: str) -> _Entry:
    entries = _entries(name)
    if size not in entries:
        raise ValueError(f"unknown size {size!r} for model {name!r}; choose one of {list(entries)}")
    return entries[size]
