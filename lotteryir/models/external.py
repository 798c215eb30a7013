"""Networks from outside lotteryir: how an import path or an entry point names a builder.

This module only *resolves* names to builders; :mod:`.registry` alone registers them
and decides when resolving is allowed. Two ways for your own restorer to reach the
command line:

- An import path, ``package.module:factory`` or ``path/to/file.py:factory``: the
  factory (a class or function) is called with no arguments and must return an
  ``nn.Module``. A dotted module is imported as ``python -m`` would, with the
  working directory on the path. A file path is made absolute, so a run means the
  same file from any working directory.
- An entry point in the ``lotteryir.models`` group of an installed package,
  ``mynet = "mypkg.models:build"`` in its pyproject.toml. The name is the model's
  name; the object is a builder (size ``default``) or a mapping size -> builder.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "lotteryir.models"
DEFAULT_SIZE = "default"


def is_import_path(name: str) -> bool:
    """Whether ``name`` is an import path (``module:factory``) rather than a registered name."""
    return ":" in name


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def canonical_name(name: str) -> str:
    """``name`` with a file path made absolute (``nets.py:Net`` -> ``/abs/nets.py:Net``); dotted paths as given.

    Pure string and path work: nothing is imported or read.
    """
    if not is_import_path(name):
        return name
    target, _, attr = name.rpartition(":")
    if target and _is_file_target(target):
        return f"{Path(target).expanduser().resolve()}:{attr}"
    return name


def model_file(name: str) -> Path | None:
    """The Python file an import path names (``/abs/nets.py:Net`` -> ``/abs/nets.py``); None for other names."""
    if not is_import_path(name):
        return None
    target = name.rpartition(":")[0]
    return Path(target).expanduser().resolve() if target and _is_file_target(target) else None


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes (a run records its model file's, to notice a changed file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    except ImportError as e:
        del sys.modules[module_name]
        raise ValueError(_import_advice(path, e)) from e
    except Exception as e:
        del sys.modules[module_name]
        raise ValueError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _import_advice(path: Path, e: ImportError) -> str:
    """What to put on PYTHONPATH so the imports inside the user's file resolve."""
    missing = (e.name or "").split(".")[0]
    # The folder that holds the missing package (a parent of the file), else the file's package root.
    root = next(
        (d for d in path.parents if missing and ((d / missing).is_dir() or (d / f"{missing}.py").is_file())),
        None,
    )
    if root is None:
        root = path.parent
        while (root / "__init__.py").is_file() and root.parent != root:
            root = root.parent
    return (
        f"importing {path} failed: {e}. A model file is imported on its own, not as part of a package: "
        f"put the folder that holds the package root on PYTHONPATH (e.g. PYTHONPATH={root}), or install "
        "the package"
    )


def _import_module(target: str, name: str) -> Any:
    if _is_file_target(target):
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
        raise ValueError(
            f"model {name!r}: cannot import module {target!r} ({e}); put the folder that holds its package root "
            "on PYTHONPATH, or install the package"
        ) from e


def resolve_import_path(name: str) -> Callable[..., Any]:
    """Import the module of ``package.module:factory`` (or ``file.py:factory``) and return the factory.

    This runs the module's code: only :func:`lotteryir.models.register_import_path` calls it, for a
    name a person gave.
    """
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


def description(builder: Callable[..., Any], fallback: str) -> str:
    """The first line of a builder's docstring, else ``fallback``."""
    doc = (getattr(builder, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else fallback


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The ``lotteryir.models`` entry points of the installed packages (nothing loaded yet)."""
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def entry_point_builders(ep: importlib.metadata.EntryPoint) -> Iterator[tuple[str, Callable[..., Any], str]]:
    """(size, builder, description) for each size an entry point declares; loading it imports its package."""
    obj = ep.load()
    builders: Mapping[str, Callable[..., Any]] = obj if isinstance(obj, Mapping) else {DEFAULT_SIZE: obj}
    for size, builder in builders.items():
        if not callable(builder):
            raise ValueError(f"size {size!r} is a {type(builder).__name__}, not a builder")
        yield size, builder, description(builder, f"from {ep.value} (entry point)")
