"""Package attributes imported on first use (PEP 562), so importing a package stays cheap.

``import lotteryir`` runs before every command line, ``--help`` included; if it imported torch there,
the help would wait seconds for it. A package lists its public names and the modules that define
them; a name's module is imported when the name is first read, then the value is cached.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: ``sources`` maps each name to its module (".sub").

    A name whose module is ".name" itself is that submodule.
    """

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(source, package)
        value = module if source == f".{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)  # later look-ups find it without this function
        return value

    return __getattr__
