"""The lotteryir command line: a thin typer + rich shell over the Python API, and the only code that prints.

- ``app.py``: the typer app and ``main`` (errors become one line and an exit code)
- ``options.py``: options several commands share, declared once
- ``render.py``: tables, progress, durations, colours
- ``prune.py``; ``commands.py`` (evaluate, restore, report); ``deploy.py`` (export, web, models, recipes);
  ``analysis.py`` (stability, compare)
"""

from __future__ import annotations

# Importing the command modules registers their commands; `--help` lists them in this order.
from . import prune  # noqa: F401

# isort: split
from . import analysis, commands, deploy  # noqa: F401
from .app import app, main
from .app import show_pruning_warnings as _show_pruning_warnings  # noqa: F401 - the names before the split
from .render import round_table as _round_table  # noqa: F401

__all__ = ["app", "main"]
