"""Networks from outside lotteryir: named by import path, or registered by an installed package.

Two ways for your own restorer to reach the command line:

- An import path, ``package.module:factory`` or ``path/to/file.py:factory``: the
  factory (a class or function) is called with no arguments and must return an
  ``nn.Module``. A dotted module is imported as ``python -m`` would, with the
  working directory on the path. It is registered under that very string, size
  ``default``.
- An entry point in the ``lotteryir.models`` group of an installed package,
  ``mynet = "mypkg.models:build"`` in its pyproject.toml. The name is the model's
  name; the object is a builder (size ``default``) or a mapping size -> builder.

Code is only ever imported from a name a person typed or from an installed
package, never from a name read out of a file (a ticket's metadata, a run's
config.json): see :func:`refuse_from_file`.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from .registry import register_model

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lotteryir.models"
DEFAULT_SIZE = "default"
_entry_points_loaded = False


def is_import_path(name: str) -> bool:
    """Whether ``name`` is an import path (``module:factory``) rather than a registered name."""
    return ":" in name


def label(name: str) -> str:
    """A short name for directories and titles: the factory's name for an import path."""
    return name.rpartition(":")[2].rpartition(".")[2] if is_import_path(name) else name


def _module_from_file(path: Path) -> Any:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"lotteryir_user_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _import_module(target: str, name: str) -> Any:
    if target.endswith(".py") or "/" in target or os.sep in target:
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"model {name!r}: no such file: {path}")
        return _module_from_file(path)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as e:
        top = target.split(".")[0]
        if e.name == top and os.getcwd() not in sys.path:  # as ``python -m`` would: the working directory
            sys.path.append(os.getcwd())
            try:
                return importlib.import_module(target)
            except ModuleNotFoundError:
                pass
        raise ValueError(f"model {name!r}: cannot import module {target!r} ({e})") from e


def resolve_import_path(name: str) -> Callable[..., Any]:
    """The factory that ``package.module:factory`` (or ``file.py:factory``) names."""
    target, _, attr = name.rpartition(":")
    if not target or not attr:
        raise ValueError(f"model {name!r}: expected package.module:factory or path/to/file.py:factory")
    obj: Any = _import_module(target, name)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"model {name!r}: {target} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"model {name!r}: {attr} is a {type(obj).__name__}, not a class or function")
    return obj


def _description(builder: Callable[..., Any], fallback: str) -> str:
    doc = (getattr(builder, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else fallback


def register_import_path(name: str) -> None:
    """Register the factory ``name`` points at as model ``name``, size ``default``."""
    factory = resolve_import_path(name)
    register_model(name, DEFAULT_SIZE, factory, description=_description(factory, f"imported from {name}"),
                   overwrite=True)


def _register_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    obj = ep.load()
    builders: Mapping[str, Callable[..., Any]] = obj if isinstance(obj, Mapping) else {DEFAULT_SIZE: obj}
    for size, builder in builders.items():
        if not callable(builder):
            raise ValueError(f"size {size!r} is a {type(builder).__name__}, not a builder")
        register_model(ep.name, size, builder, description=_description(builder, f"from {ep.value} (entry point)"),
                       overwrite=True)


def load_entry_points() -> None:
    """Register every model that installed packages declare in the ``lotteryir.models`` group (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from .registry import _REGISTRY

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue  # built-in and explicitly registered models keep their name
        try:
            _register_entry_point(ep)
        except Exception as e:  # one broken plugin must not take the others (or the CLI) down
            log.warning("ignoring model entry point %s = %s: %s", ep.name, ep.value, e)


def refuse_from_file(name: str | None, source: str) -> None:
    """Raise unless ``name``, read from ``source`` (a file), can be used without importing code it names."""
    from .registry import _REGISTRY

    if name and is_import_path(name) and name not in _REGISTRY:
        raise ValueError(
            f"{source} was made with model {name!r}. lotteryir does not import code named inside a file; "
            f"say it yourself: --model {name} (Python: name={name!r})"
        )
