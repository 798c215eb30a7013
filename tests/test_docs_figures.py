"""Every figure the docs quote is what its results file says, and every image the pages show exists.

``docs/figures.json`` lists each quoted figure: the page, the JSON file a benchmark writes under
``benchmarks/results/``, and the text the page must contain, formatted from the file's values.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = json.loads((ROOT / "docs" / "figures.json").read_text())["figures"]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _get(data, path):
    for key in path:
        if key == "*":
            return data
        data = data[key] if isinstance(data, list) else data[str(key)]
    return data


def _value(data, spec):
    if isinstance(spec, list):
        return _get(data, spec)
    if "max" in spec:
        path = spec["max"]
        head, tail = path[: path.index("*")], path[path.index("*") + 1 :]
        return max(_get(item, tail) for item in _get(data, head))
    if "sub" in spec:
        a, b = spec["sub"]
        return _get(data, a) - _get(data, b)
    if "div" in spec:
        a, b = spec["div"]
        return _get(data, a) / _get(data, b)
    return _get(data, spec["path"]) * spec.get("scale", 1)


@pytest.mark.parametrize("figure", SPEC, ids=lambda f: f"{Path(f['page']).name}:{f['text'][:40]}")
def test_quoted_figure_matches_its_results_file(figure):
    data = json.loads((ROOT / figure["file"]).read_text())
    values = {name: _value(data, spec) for name, spec in figure["values"].items()}
    text = figure["text"].format(**values)
    page = (ROOT / figure["page"]).read_text()
    assert text in page, f"{figure['page']} should say {text!r} (from {figure['file']})"


def test_every_page_with_measurements_is_covered():
    quoted = {Path(f["page"]).name for f in SPEC}
    for name in ("getting-started.md", "cli.md", "deploy.md", "results.md", "benchmarks.md"):
        assert name in quoted, name


def test_results_tables_are_the_benchmarks_own_rows():
    """The Results page's tables are rows of benchmarks/results/lottery_tickets.md, unchanged."""
    source = (ROOT / "benchmarks" / "results" / "lottery_tickets.md").read_text().splitlines()
    page = (ROOT / "docs" / "results.md").read_text().splitlines()
    rows = [line for line in page if re.match(r"\| (degraded input|\d\.\d{3})", line)]
    assert len(rows) == 12, rows  # 7 rows of means, 5 of paired differences
    for row in rows:
        assert row in source, row


def test_images_the_pages_show_exist():
    for page in PAGES:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name}: {target}"


def test_copied_benchmark_figures_are_the_benchmarks_own():
    """A docs image named like a benchmark's figure is a copy of it, not an older run's."""
    copies = [
        p
        for p in sorted((ROOT / "docs" / "images").glob("*.png"))
        if (ROOT / "benchmarks" / "results" / p.name).is_file()
    ]
    assert {"lottery_tickets.png", "cost_quality.png", "stability.png", "task_tickets.png"} <= {p.name for p in copies}
    for copy in copies:
        assert copy.read_bytes() == (ROOT / "benchmarks" / "results" / copy.name).read_bytes(), copy.name


# Public names in files that other work is restructuring now; each must gain a docstring there.
PENDING = {"lotteryir.runs.is_run_dir", "lotteryir.pruning.MAX_ROUNDS"}
PACKAGES = ["lotteryir", "lotteryir.data", "lotteryir.deploy", "lotteryir.engine", "lotteryir.models"]
PACKAGES += ["lotteryir.pruning", "lotteryir.runs"]


def _missing_docstrings() -> set[str]:
    """Public names (``__all__``) whose docstring mkdocstrings would render empty."""
    import griffe

    loaded = griffe.load("lotteryir", search_paths=[str(ROOT)], resolve_aliases=True)
    missing = set()
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
                doc = inspect.getdoc(obj)
            else:  # data: the string literal under the assignment, as griffe reads it
                member = loaded[
                    package.removeprefix("lotteryir").lstrip(".") + "." + name if package != "lotteryir" else name
                ]
                doc = member.docstring.value if member.docstring else None
            if not (doc or "").strip():
                missing.add(f"{package}.{name}")
    return missing


def test_every_public_name_has_a_docstring():
    missing = _missing_docstrings()
    assert missing - PENDING == set(), sorted(missing - PENDING)
    assert PENDING <= missing, f"documented now, remove from PENDING: {sorted(PENDING - missing)}"


def test_readme_round_table_is_the_main_command_benchmarks_own():
    """The README's example of the main command (first line, round table, notes) is what
    benchmarks/main_command.py recorded when it ran that command."""
    record = json.loads((ROOT / "benchmarks" / "results" / "main_command.json").read_text())
    source = (ROOT / "benchmarks" / "results" / "main_command.md").read_text().splitlines()
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    rows = [line for line in lines if re.match(r"\| (input|\d+) \|", line)]
    assert len(rows) == 1 + len(record["report"]["rounds"]), rows
    for row in rows:
        assert row in source, row
    notes = [line for line in lines if re.match(r"round \d+ is worse than its input", line)]
    assert notes == [line for line in source if re.match(r"round \d+ is worse than its input", line)]
    assert record["first_line"] in readme


def test_analysis_results_tables_are_the_benchmarks_own_rows():
    """The tables under the analysis page's "Results" headings are rows of the benchmarks' own tables."""
    sources = {
        "stable": (ROOT / "benchmarks" / "results" / "stability.md").read_text().splitlines(),
        "whose ticket": (ROOT / "benchmarks" / "results" / "task_tickets.md").read_text().splitlines(),
    }
    sections = re.split(r"^## ", (ROOT / "docs" / "analysis.md").read_text(), flags=re.M)
    checked = 0
    for name, source in sources.items():
        section = [s for s in sections if s.startswith("Results") and name in s.splitlines()[0]]
        assert len(section) == 1, f"docs/analysis.md needs one '## Results: ...{name}...' section"
        rows = [line for line in section[0].splitlines() if line.startswith("| ") and not line.startswith("| ---")]
        assert len(rows) >= 4, name
        for row in rows:
            assert row in source, row
        checked += len(rows)
    assert checked >= 10
