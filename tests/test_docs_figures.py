"""Every measured number the docs quote is what its results file says, in its own sentence, and every
image the pages show exists.

``docs/figures.json`` is the ledger:

- ``commands``: for each results file under ``benchmarks/results/``, the command that writes it.
- ``figures``: a quoted figure: the page, the results file, and the text around the number, formatted
  from the file's values. The text must lie inside one sentence (or be one whole table row) of the
  page, and carry words of its own: a bare ``"σ15 {v:+.2f}"`` could match anywhere and is refused.
- ``copies``: lines of a page (table rows, output) that are lines of a table a benchmark wrote.
- ``not_measured``: the short allow-list of numbers that look measured but are not (targets,
  defaults, settings, constants), each with the reason.

Any other measured-looking number on a page (dB, seconds, ratios, percentages, MB, intervals, ...)
fails ``test_every_measured_number_is_in_the_ledger``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEDGER = json.loads((ROOT / "docs" / "figures.json").read_text())
SPEC, COPIES, ALLOWED = LEDGER["figures"], LEDGER["copies"], LEDGER["not_measured"]
COMMANDS: dict[str, str] = LEDGER["commands"]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# What a measured figure looks like: a number with a unit, a ratio, an interval, a ±, a float with
# two or more decimals, a power of ten. Versions (2.14.1), names (σ15, down3_4) and sizes (1x1, 48x48)
# are not numbers here.
_NUM = r"(?<![\w.])[-+−]?\d[\d,]*(?:\.\d+)?(?:e[-+]\d+)?(?![\w.]*\d)"
_UNIT = r"(?:\s?(?:dB|ms|s|min|minutes?|seconds?|hours?|MB|MiB|GB|GiB|kB|bytes|steps/s|patches/s)\b|%|x\b)"
MEASURED = re.compile(
    rf"{_NUM}{_UNIT}"  # 1.50 dB, 0.177 s, 93.4 min, 33.2 MB, 29%, 1.64x
    rf"|(?<![\w.])x\d+(?:\.\d+)?\b"  # x2.31
    rf"|{_NUM}\s?±\s?{_NUM}"  # 25.25 ± 0.17
    rf"|\[{_NUM},\s?{_NUM}\]"  # [-0.24, +1.08]
    r"|(?<![\w.])[-+−]?\d+\.\d{2,}(?![\w.]*\d)"  # 0.868, +3.36
    r"|(?<![\w.])\d(?:\.\d+)?e[-+]?\d+\b"  # 9.1e-06
    r"|(?<![\w.])\d+ of \d+\b"  # 44 of 91
)
_WORD = re.compile(r"[^\W\d_]{2,}")
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _units_of(text: str) -> list[str]:
    """A page as units a figure must lie within: sentences of prose, table rows, output lines.

    Code blocks that run (python, bash) or install (shell, toml) are code, not quotes; ``text``
    blocks (a command's output) give one unit per line.
    """
    units: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            units.extend(s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(`\[])", _norm(" ".join(para))) if s)
            para.clear()

    fence = None
    for line in text.splitlines():
        if line.startswith("```"):
            flush()
            fence = line[3:].strip() if fence is None else None
            continue
        if fence is not None:
            if fence == "text" and line.strip():
                units.append(_norm(line))
            continue
        if line.startswith("|") or line.startswith("#") or not line.strip():
            flush()
            if line.strip():
                units.append(_norm(line))
            continue
        if re.match(r"\s*(?:[-*]|\d+\.)\s", line):  # a list item starts a sentence of its own
            flush()
        para.append(line)
    flush()
    return units


UNITS = {page.relative_to(ROOT).as_posix(): _units_of(page.read_text()) for page in PAGES}


def _walk(data, path):
    """Every value at ``path``; ``"*"`` runs over the items of a list or the values of a dict."""
    if not path:
        return [data]
    key, rest = path[0], path[1:]
    if key == "*":
        items = data if isinstance(data, list) else list(data.values())
        return [v for item in items for v in _walk(item, rest)]
    return _walk(data[key] if isinstance(data, list) else data[str(key)], rest)


def _value(data, spec):
    if isinstance(spec, list):
        (value,) = _walk(data, spec)
        return value
    if "at_most" in spec:  # a verdict the page spells out: "met" or "**missed**"
        return spec["then"] if _value(data, spec["path"]) <= spec["at_most"] else spec["else"]
    if "count" in spec:  # how many values at a '*' path (equal to "where", if given)
        values = _walk(data, spec["count"])
        return sum(v == spec["where"] for v in values) if "where" in spec else len(values)
    if "max" in spec or "min" in spec:
        pick = max if "max" in spec else min
        target = spec.get("max", spec.get("min"))
        paths = target if target and isinstance(target[0], list) else [target]  # one path, or several
        value = pick(v for path in paths for v in _walk(data, path))
    elif "sub" in spec:
        a, b = spec["sub"]
        value = _value(data, a) - _value(data, b)
    elif "div" in spec:
        a, b = spec["div"]
        value = _value(data, a) / _value(data, b)
    elif "sum" in spec:
        value = sum(_value(data, p) for p in spec["sum"])
    else:
        value = _value(data, spec["path"])
    return value * spec["scale"] if "scale" in spec else value


def _formatted(figure) -> str:
    data = json.loads((ROOT / figure["file"]).read_text())
    return _norm(figure["text"].format(**{name: _value(data, spec) for name, spec in figure["values"].items()}))


def _context_words(template: str) -> list[str]:
    """The words a figure's text carries besides its numbers."""
    return _WORD.findall(re.sub(r"\{[^}]*\}", " ", template))


def _locate(text: str, units: list[str]) -> list[int]:
    """Which units hold ``text``: a table row whole, anything else inside one sentence."""
    if text.startswith("|"):
        return [i for i, unit in enumerate(units) if unit == text]
    return [i for i, unit in enumerate(units) if text in unit]


def _problem(figure) -> str | None:
    """Why an entry cannot stand in the ledger, or None."""
    if not figure["text"].lstrip().startswith("|") and len(_context_words(figure["text"])) < 3:
        return f"{figure['text']!r}: a figure needs its sentence's words around it (3 or more), not just the number"
    if figure["file"] not in COMMANDS:
        return f"{figure['file']} has no command in the ledger's 'commands'"
    return None


def _where(figure, units: list[str]) -> list[int]:
    return _locate(_formatted(figure), units)


@pytest.mark.parametrize("figure", SPEC, ids=lambda f: f"{Path(f['page']).name}:{f['text'][:40]}")
def test_quoted_figure_is_in_its_sentence(figure):
    problem = _problem(figure)
    assert problem is None, problem
    assert _where(figure, UNITS[figure["page"]]), (
        f"{figure['page']} should say {_formatted(figure)!r} within one sentence or as a whole table row"
        f" (from {figure['file']})"
    )


def test_a_bare_number_or_a_figure_across_sentences_is_refused():
    """The rules the ledger's entries are held to: words around the number, and one sentence."""
    file = "benchmarks/results/sample_defaults.json"
    bare = {"page": "docs/getting-started.md", "file": file, "text": "σ15 {v:+.2f}", "values": {}}
    assert "words" in _problem(bare)
    assert _problem(dict(bare, text="dB on the mean ({v:+.2f})")) is None
    assert _problem(dict(bare, text="| σ15 | {v:+.2f} |")) is None  # a whole row says what it is
    assert "no command" in _problem(dict(bare, text="gains {v} dB on the mean", file="benchmarks/results/x.json"))
    units = _units_of("It took 3 min to train.\nThe gain was\n4 dB.\n\n| a | 4 dB |\n")
    assert units == ["It took 3 min to train.", "The gain was 4 dB.", "| a | 4 dB |"]
    assert _locate("The gain was 4 dB", units) == [1]
    assert _locate("to train. The gain", units) == []  # across two sentences
    assert _locate("| a | 4 dB |", units) == [2] and _locate("| a | 4", units) == []  # a row is whole


def test_the_scan_finds_measured_numbers_and_skips_names_and_versions():
    text = "took 93.4 min, 1.50x faster, 25.25 ± 0.17 [-0.24, +1.08], IoU 0.868, 9.1e-06, 29%, x2.31, 44 of 91"
    text += "; torch 2.14.1, σ15, down3_4, 1x1 and 48x48 patches, 600 steps, round 3"
    want = "93.4 min|1.50x|25.25 ± 0.17|[-0.24, +1.08]|0.868|9.1e-06|29%|x2.31|44 of 91".split("|")
    assert [m.group() for m in MEASURED.finditer(text)] == want


def test_every_results_file_names_the_command_that_writes_it():
    used = {f["file"] for f in SPEC} | {c["file"] for c in COPIES}
    assert used <= COMMANDS.keys(), sorted(used - COMMANDS.keys())
    assert COMMANDS.keys() <= used, f"commands for files no page quotes: {sorted(COMMANDS.keys() - used)}"
    for file, command in COMMANDS.items():
        assert (ROOT / file).is_file(), file
        scripts = re.findall(r"\bbenchmarks/(\w+)\.py\b", command)
        assert len(scripts) == 1, f"{file}: the command should run one benchmarks/*.py script: {command!r}"
        assert (ROOT / "benchmarks" / f"{scripts[0]}.py").is_file(), command
        # A benchmark writes results/<its name>*.{json,md}: the script's name says which files are its own.
        assert Path(file).stem.startswith(scripts[0]), f"{file} is not written by {command!r}"
        if file.endswith(".json"):
            data = json.loads((ROOT / file).read_text())
            recorded = data.get("command") or (data.get("provenance") or {}).get("command")
            if isinstance(recorded, str) and "benchmarks/" in recorded:  # the file's own record agrees
                assert re.findall(r"\bbenchmarks/(\w+)\.py\b", recorded) == scripts, (file, recorded)


def _section(page: Path, heading: str | None) -> list[str]:
    text = page.read_text()
    if heading is None:
        return text.splitlines()
    sections = [s for s in re.split(r"^## ", text, flags=re.M) if s.startswith(heading)]
    assert len(sections) == 1, f"{page.name} needs one '## {heading}...' section"
    return sections[0].splitlines()


def _copied_lines(copy) -> list[str]:
    lines = _section(ROOT / copy["page"], copy.get("section"))
    return [line for line in lines if re.match(copy["lines"], line) and not line.startswith("|---")]


@pytest.mark.parametrize("copy", COPIES, ids=lambda c: f"{Path(c['page']).name}:{c.get('section') or c['file']}")
def test_copied_lines_are_the_benchmarks_own(copy):
    """Tables and output on a page are lines of the table the benchmark wrote, unchanged."""
    source = (ROOT / copy["file"]).read_text().splitlines()
    lines = _copied_lines(copy)
    assert len(lines) >= copy["min"], lines
    for line in lines:
        assert line in source, f"{copy['page']}: {line!r} is not a line of {copy['file']}"


def _spans(needle: str, unit: str) -> list[tuple[int, int]]:
    return [(m.start(), m.start() + len(needle)) for m in re.finditer(re.escape(needle), unit)] if needle else []


def _unledgered(page: str) -> list[str]:
    """Measured-looking numbers of a page that no ledger entry covers, each with its sentence."""
    units = UNITS[page]
    covered: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(units))}
    for figure in (f for f in SPEC if f["page"] == page):
        for i in _where(figure, units):
            covered[i] += _spans(_formatted(figure), units[i])
    copied = {_norm(line) for copy in COPIES if copy["page"] == page for line in _copied_lines(copy)}
    for entry in (a for a in ALLOWED if a.get("page", page) == page):
        for i, unit in enumerate(units):
            covered[i] += _spans(_norm(entry["text"]), unit)
    found = []
    for i, unit in enumerate(units):
        if unit in copied:
            continue
        spans = covered[i] + [m.span() for m in _CODE_SPAN.finditer(unit)]  # options and commands
        for m in MEASURED.finditer(unit):
            if not any(a <= m.start() and m.end() <= b for a, b in spans):
                found.append(f"{m.group()!r} in {unit[max(0, m.start() - 60) : m.end() + 40]!r}")
    return found


@pytest.mark.parametrize("page", sorted(UNITS))
def test_every_measured_number_is_in_the_ledger(page):
    """A new measured number on a page needs a ledger entry (or, if it is no measurement, the allow-list)."""
    found = _unledgered(page)
    assert not found, f"{page}: numbers outside docs/figures.json:\n" + "\n".join(found)


def test_the_allow_list_is_small_and_used():
    assert len(ALLOWED) <= 50  # small: a number that is measured belongs in the figures
    for entry in ALLOWED:
        assert entry.get("why"), entry
        assert MEASURED.search(_norm(entry["text"])), f"{entry['text']!r} holds no measured-looking number"
        pages = [entry["page"]] if "page" in entry else list(UNITS)
        assert any(_norm(entry["text"]) in unit for p in pages for unit in UNITS[p]), f"unused: {entry['text']!r}"


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
