"""A results file and what is built from it: the JSON, the markdown table and the figure, each atomic.

Conventions: ``<out>.json`` holds ``benchmark``, ``config`` (what defines the results; a resumed
sitting must match it), ``results`` (the finished units), ``summary`` (computed from them),
``timing`` (the plan's measurement) and ``provenance``; ``<out>.md`` and ``<out>.png`` sit beside it
and are rebuilt from whatever is finished, so a table or figure never describes a run that is not in
the file. Figures: matplotlib's Agg backend, 120 dpi, the degraded input as a red dotted line and
dense as a black dashed one, error bars the standard deviation over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

INPUT = {"color": "tab:red", "ls": ":", "lw": 1.5, "label": "degraded input"}
DENSE = {"color": "black", "ls": "--", "lw": 1, "label": "dense"}


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A markdown table's lines: ``| a | b |`` rows under the header and its rule (an empty cell is ``| |``)."""
    return [line(header), "|---" * len(header) + "|", *(line(row) for row in rows)]


def line(cells: Sequence[Any]) -> str:
    """One markdown table row."""
    return "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"


def save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` as PNG atomically, and close it."""
    import matplotlib.pyplot as plt

    from lotteryir._files import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_outputs(
    report: dict[str, Any],
    out: Path,
    summarize: Callable[[dict[str, Any]], dict[str, Any]],
    markdown: Callable[[dict[str, Any]], str],
    figure: Callable[[dict[str, Any], Path], None] | None,
) -> str:
    """Summary, JSON, table and figure from whatever is finished (each written atomically); the table's text."""
    # Imported here: worker processes import the harness to run a unit, and lotteryir brings torch.
    from lotteryir._files import atomic_write_text

    report["summary"] = summarize(report)
    atomic_write_text(out, json.dumps(report, indent=2))
    text = markdown(report)
    atomic_write_text(out.with_suffix(".md"), text)
    if figure is not None:
        figure(report, out.with_suffix(".png"))
    return text
