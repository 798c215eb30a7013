"""The benchmark harness: a benchmark declares its grid and its verdict, the harness runs it.

- ``runner``: :class:`Benchmark` (the declaration) and ``main`` (the command line, plan, resume, sittings)
- ``units``: :class:`Unit` (one resumable piece of work), worker processes, the estimate
- ``stats``: paired differences with 95% t-intervals, spreads, the table formatters
- ``outputs``: the results file, its markdown table and figure, written atomically
- ``provenance``: command, commit, machine, threads, load and wall time of every sitting
- ``training``: the sample training the four research benchmarks share (imports torch and lotteryir)

Benchmarks are scripts in ``benchmarks/``; run as ``python benchmarks/NAME.py`` their folder is on
``sys.path``, so ``import harness`` finds this package (the tests add the folder to the path).
"""

from .outputs import DENSE, INPUT, line, pyplot, save_figure, table, write_outputs
from .provenance import ROOT, Sitting, provenance, relative
from .runner import Benchmark, Refused, ints, main, merge, parse, seeds
from .stats import SHORT, ci, col, differences, nan, paired, pm, side, spread, spreads, t975
from .units import Timing, Unit, estimate, execute, put

__all__ = [
    "DENSE",
    "INPUT",
    "ROOT",
    "SHORT",
    "Benchmark",
    "Refused",
    "Sitting",
    "Timing",
    "Unit",
    "ci",
    "col",
    "differences",
    "estimate",
    "execute",
    "ints",
    "line",
    "main",
    "merge",
    "nan",
    "paired",
    "parse",
    "pm",
    "provenance",
    "put",
    "pyplot",
    "relative",
    "save_figure",
    "seeds",
    "side",
    "spread",
    "spreads",
    "t975",
    "table",
    "write_outputs",
]
