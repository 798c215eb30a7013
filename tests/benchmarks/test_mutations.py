"""benchmarks/mutations.py: every mutation still applies (its old text occurs exactly once), and every
method and part of the core has one. The mutations themselves run as a documented command, not here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from lotteryir.pruning.methods import METHODS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mutations.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_mutations", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_mutation_applies_once_and_the_list_covers_the_core_and_every_method():
    tool = load_tool()
    assert tool.problems() == []
    for m in tool.MUTATIONS:  # applied, the file changes
        text = (tool.ROOT / m.file).read_text()
        assert text.replace(m.old, m.new, 1) != text, m.name
    areas = {m.area for m in tool.MUTATIONS}
    core = {"schedule", "selection", "strategies", "rewind", "masking", "transfer"}
    assert core <= areas and set(METHODS) <= areas, sorted((core | set(METHODS)) - areas)  # a new method adds one


def test_the_check_finds_what_is_wrong_with_a_list(tmp_path):
    tool = load_tool()
    (tmp_path / "a.py").write_text("x = 1\nx = 1\n")
    (tmp_path / "test_a.py").write_text("def test_one():\n    pass\n")
    mutation = tool.Mutation("m", "area", "a.py", "x = 1", "x = 2", ("test_a.py::test_one",), "why")
    twice = tool.problems((mutation,), root=tmp_path)
    assert twice == ["m: its old text occurs 2 times in a.py, not once"]
    (tmp_path / "a.py").write_text("x = 1\n")
    gone = tool.Mutation("n", "area", "a.py", "x = 1", "x = 1", ("test_a.py::test_two", "test_b.py"), "why")
    assert tool.problems((mutation, gone), root=tmp_path) == [
        "n: new is old (a no-op)",
        "n: test_a.py has no test test_two",
        "n: test_b.py does not exist",
    ]


def test_a_mutation_run_by_the_command_is_killed() -> None:
    """The documented command, end to end, on one cheap mutation: its process imports lotteryir (through
    the harness) before forking, and the forked pytest must still import the mutated copy."""
    import subprocess

    argv = [sys.executable, str(SCRIPT), "--only", "schedule-rounds-for-density"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr  # 1: a mutation survived
    assert "schedule-rounds-for-density: killed" in done.stdout
    assert "test_pruner.py::test_target_density_sets_rounds" in done.stdout
    assert "score: 1/1 killed" in done.stdout
