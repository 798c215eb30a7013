"""How each benchmark shows its results: its markdown tables and its figure, built from the results file.

One module per benchmark (``reports/NAME.py`` for ``benchmarks/NAME.py``), with ``markdown(report, a)``
and ``figure(report, a, path)``; what to measure and what it concludes stay in the benchmark's
declaration, the conventions (table rows, reference lines, atomic writes) in ``harness``.
"""
