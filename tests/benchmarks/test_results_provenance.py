"""Every results file says how it was made (command, commit, dirty flag, machine, threads, load, wall time
over its sittings) and names no absolute path: a file made before provenance existed carries a record
recovered from git history, marked as such."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from harness.provenance import FIELDS, ROOT

RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
# A path from the root of a file system (POSIX, or a Windows drive), inside a string.
ABSOLUTE = re.compile(r"(?:^|[\s('\"=])(?:/(?:[\w.-]+/)+|[A-Za-z]:\\)")
SITTING = ("started", "command", "commit", "dirty", "threads", "load_start", "load_end", "wall_seconds")


def strings(x: Any, where: str = "") -> list[tuple[str, str]]:
    if isinstance(x, dict):
        return [s for k, v in x.items() for s in strings(v, f"{where}/{k}")]
    if isinstance(x, list):
        return [s for i, v in enumerate(x) for s in strings(v, f"{where}/{i}")]
    return [(where, x)] if isinstance(x, str) else []


def problems(data: dict[str, Any]) -> list[str]:
    """What is missing or wrong in a results file's provenance and paths (empty: nothing)."""
    p = data.get("provenance")
    if not isinstance(p, dict):
        return ["no provenance record"]
    out = [f"absolute path at {w}: {s!r}" for w, s in strings(data) if ABSOLUTE.search(s)]
    out += [f"provenance lacks {f}" for f in FIELDS if f not in p]
    if not re.fullmatch(r"[0-9a-f]{40}", str(p.get("commit"))):
        out.append(f"commit {p.get('commit')!r} is not a git hash")
    if p.get("recovered"):  # made before provenance existed: unknown fields are null, never invented
        return out + ([] if isinstance(p["recovered"], str) and "git" in p["recovered"] else ["recovered says not how"])
    out += [f"provenance.{f} is null" for f in FIELDS if f in p and p[f] is None]
    sittings = p.get("sittings") or []
    out += [f"sitting {i} lacks {f}" for i, s in enumerate(sittings) for f in SITTING if s.get(f) is None]
    if not sittings:
        out.append("no sittings")
    elif p.get("wall_seconds") is not None and not math.isclose(
        p["wall_seconds"], sum(s.get("wall_seconds") or 0 for s in sittings), abs_tol=1e-3
    ):
        out.append("wall_seconds is not the sum over the sittings")
    return out


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_results_file_says_how_it_was_made(path: Path) -> None:
    assert problems(json.loads(path.read_text())) == []


def test_the_check_refuses_what_it_should() -> None:
    good = json.loads((ROOT / "benchmarks" / "results" / "lottery_tickets.json").read_text())
    assert problems(good) == []
    assert problems({"rows": []}) == ["no provenance record"]
    bad = json.loads(json.dumps(good))
    bad["runs"][0]["source"] = "/home/someone/benchmarks/work/seed0"
    bad["provenance"]["commit"] = None
    assert not good["provenance"].get("recovered")  # a record made by the harness, every field known
    assert problems(bad) == [
        "absolute path at /runs/0/source: '/home/someone/benchmarks/work/seed0'",
        "commit None is not a git hash",
        "provenance.commit is null",
    ]
    fresh = {k: good["provenance"].get(k) for k in FIELDS}
    fresh.update(commit="0" * 40, dirty=None, sittings=[{f: 1 for f in SITTING}], wall_seconds=2.0)
    assert "provenance.dirty is null" in problems({"provenance": fresh})
    assert "wall_seconds is not the sum over the sittings" in problems({"provenance": fresh})
    assert problems({"x": "see C:\\Users\\me\\x.json", "provenance": {**fresh, "recovered": "git log"}}) == [
        "absolute path at /x: 'see C:\\\\Users\\\\me\\\\x.json'"
    ]
