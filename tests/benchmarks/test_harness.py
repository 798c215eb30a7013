"""benchmarks/harness: the statistics, the units and their estimate, resume after a kill, the sittings'
provenance, merging, refusals; on a toy benchmark whose units are arithmetic (no training)."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from harness import Benchmark, Unit, ci, col, estimate, execute, main, paired, pm, relative, t975, table
from harness.provenance import FIELDS, ROOT, Sitting, command, provenance
from harness.units import Timing


# -- statistics and formatters ---------------------------------------------------------------
def test_paired_difference_has_the_student_t_interval() -> None:
    d = paired([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])  # differences 2, 3, 4: mean 3, sd 1, t(2) = 4.303
    assert (d["mean"], d["std"], d["n"]) == (3.0, 1.0, 3)
    assert d["low"] == pytest.approx(3 - 4.303 / math.sqrt(3)) and d["high"] == pytest.approx(3 + 4.303 / math.sqrt(3))
    one = paired([2.0], [1.5])
    assert one["mean"] == 0.5 and math.isnan(one["low"]) and math.isnan(one["high"])
    assert (t975(11), t975(25), t975(40)) == (2.228, 2.086, 1.96)  # the nearest smaller tabulated df, then normal


def test_formatters_are_one_definition() -> None:
    assert ci({"mean": 0.5, "low": -0.1, "high": 1.1, "n": 3}) == "+0.50 [-0.10, +1.10]"
    assert ci({"mean": -0.25, "low": math.nan, "high": math.nan, "n": 1}) == "-0.25 (1 seed)"
    assert pm({"mean": 25.0, "std": 0.125}, 3) == "25.00 ± 0.12" and pm({"mean": 25.0, "std": 0.1}, 1) == "25.00"
    assert pm({"mean": math.nan, "std": math.nan}, 3) == "nan"
    assert [col(k) for k in ("mean", "denoise", "denoise_15/sample", "dehaze/sample", "other")] == [
        "mean", "denoise mean", "σ15", "haze", "other",
    ]  # fmt: skip
    assert table(["a", "b"], [[1, ""]]) == ["| a | b |", "|---|---|", "| 1 | |"]


# -- units ------------------------------------------------------------------------------------
def square(x: int) -> dict[str, Any]:
    return {"x": x * x}


def broken(x: int) -> dict[str, Any]:
    raise RuntimeError(f"unit {x} broke")


def test_units_run_after_their_inputs_and_a_failure_leaves_its_dependents_waiting(capsys: Any) -> None:
    seen: list[tuple[str, ...]] = []
    units = [
        Unit(("b",), "k", call=(square, 3), after=(("a",),)),
        Unit(("a",), "k", call=(square, 2)),
        Unit(("c",), "k", start=lambda: {"x": -1}),  # nothing to run: the result itself
        Unit(("d",), "k", call=(broken, 4)),
        Unit(("e",), "k", call=(square, 5), after=(("d",),)),
    ]
    failed, left = execute(units, 1, lambda u, got, s: seen.append((*u.key, got["x"])))
    assert seen == [("a", 4), ("b", 9), ("c", -1)]
    assert [u.key for u in failed] == [("d",)] and [u.key for u in left] == [("e",)]
    assert "error: d failed: RuntimeError: unit 4 broke" in capsys.readouterr().err


def test_the_estimate_replays_the_schedule_and_shares_the_cores() -> None:
    t = Timing(step=1.0, eval=0.0, build=0.0)
    three = [Unit((k,), "k", steps=60) for k in "abc"]
    # 3 equal units on 2 workers: two run, then the third alone (not 3 x 60 / 2 = 90)
    assert estimate(three, t, workers=2, cores=2)["wall_seconds"] == 120
    # 3 workers on 2 cores of 1 thread each: all at once, each 1.5x slower
    assert estimate(three, t, workers=3, cores=2, threads=1)["wall_seconds"] == 90
    # 2 workers of 2 threads on 2 cores: twice as slow as alone
    assert estimate(three[:2], t, workers=2, cores=2, threads=2)["wall_seconds"] == 120
    # a unit waiting on one finished in an earlier sitting (not in the plan) starts at once
    late = [Unit(("b",), "k", steps=60, after=(("gone",),))]
    assert estimate(late, t, workers=1)["wall_seconds"] == 60


def test_the_estimate_is_the_work_over_the_workers_or_the_longest_chain() -> None:
    t = Timing(step=1.0, eval=10.0, build=2.0)
    units = [Unit(("a",), "k", steps=10), Unit(("b",), "k", steps=5, evals=1, after=(("a",),)), Unit(("c",), "k", 3)]
    plan = estimate(units, t, workers=2)
    assert plan["work_seconds"] == (10 + 2) + (5 + 10 + 2) + (3 + 2)
    assert plan["wall_seconds"] == 12 + 17  # a then b: longer than 34 s of work on 2 workers
    assert estimate(units, t, workers=1)["wall_seconds"] == 34


# -- a toy benchmark through main ----------------------------------------------------------------
CALLS: list[int] = []


def work(x: int) -> dict[str, Any]:
    CALLS.append(x)
    if x == int(os.environ.get("TOY_KILL_AT", "-1")):
        raise KeyboardInterrupt  # what a kill does to the sitting: nothing after it runs
    return {"value": x * 10, "seconds": 0.0}


class Toy(Benchmark):
    name, seeds = "toy", 2

    def options(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--scale", type=int, default=1)

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        return {"scale": a.scale}

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        res = report.get("results", {})
        keys = [(str(s), v) for s in range(a.seed0, a.seed0 + a.seeds) for v in ("p", "q")]
        return [Unit(k, "toy", 1, call=(work, 10 * int(k[0]) + (k[1] == "q"))) for k in keys if k[1] not in res.get(k[0], {})]  # fmt: skip  # noqa: E501

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        return {"total": sum(c["value"] for s in report["results"].values() for c in s.values())}

    def markdown(self, report: dict[str, Any], a: argparse.Namespace) -> str:
        return f"total {report['summary']['total']}\n"


def test_a_killed_benchmark_keeps_its_finished_units_and_the_rerun_does_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out = tmp_path / "toy.json"
    argv = ["--out", str(out)]
    CALLS.clear()
    monkeypatch.setenv("TOY_KILL_AT", "1")  # the second unit (seed 0, q) is killed
    with pytest.raises(KeyboardInterrupt):
        main(Toy(), argv)
    first = json.loads(out.read_text())
    assert first["results"] == {"0": {"p": {"value": 0, "seconds": 0.0}}} and first["summary"]["total"] == 0
    assert len(first["provenance"]["sittings"]) == 1
    monkeypatch.delenv("TOY_KILL_AT")
    CALLS.clear()
    assert main(Toy(), argv) == 0
    assert CALLS == [1, 10, 11]  # the finished unit is not run again
    report = json.loads(out.read_text())
    assert report["summary"]["total"] == 10 + 100 + 110 and out.with_suffix(".md").read_text() == "total 220\n"
    p = report["provenance"]
    assert len(p["sittings"]) == 2 and p["wall_seconds"] == pytest.approx(sum(s["wall_seconds"] for s in p["sittings"]))
    assert p["command"] == f"python tests/benchmarks/test_harness.py --out {relative(out)}"
    assert not any(os.path.isabs(w) for w in p["command"].split())
    assert report["config"] == {"scale": 1, "seeds": [0, 1]}
    CALLS.clear()
    assert main(Toy(), argv) == 0 and CALLS == []  # nothing left
    assert "0 unit(s) to run" in capsys.readouterr().out
    # --seeds grows the results; another configuration is refused, naming what differs
    assert main(Toy(), [*argv, "--seeds", "3"]) == 0 and CALLS == [20, 21]
    assert json.loads(out.read_text())["config"]["seeds"] == [0, 1, 2]
    capsys.readouterr()
    assert main(Toy(), [*argv, "--scale", "2"]) == 2
    assert "holds results of another configuration (scale: 1 -> 2)" in capsys.readouterr().err


def test_dry_run_writes_nothing_and_report_only_rebuilds_the_table(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "toy.json"
    assert main(Toy(), ["--out", str(out), "--dry-run"]) == 0
    assert "4 unit(s) to run (4 toy)" in capsys.readouterr().out and not out.exists()
    assert main(Toy(), ["--out", str(out), "--report-only"]) == 2
    assert "does not exist; run the benchmark first" in capsys.readouterr().err
    assert main(Toy(), ["--out", str(out)]) == 0
    out.with_suffix(".md").unlink()
    assert main(Toy(), ["--out", str(out), "--report-only"]) == 0
    assert out.with_suffix(".md").read_text() == "total 220\n"


def test_merge_takes_another_sittings_units_and_refuses_another_configuration(tmp_path: Path, capsys: Any) -> None:
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    assert main(Toy(), ["--out", str(a), "--seeds", "1"]) == 0
    assert main(Toy(), ["--out", str(b), "--seeds", "1", "--seed0", "1"]) == 0
    CALLS.clear()
    assert main(Toy(), ["--out", str(a), "--seeds", "1", "--merge", str(b), "--report-only"]) == 0
    merged = json.loads(a.read_text())
    assert set(merged["results"]) == {"0", "1"} and merged["config"]["seeds"] == [0, 1] and CALLS == []
    assert merged["merged"] == [relative(b)] and merged["summary"]["total"] == 220
    assert main(Toy(), ["--out", str(c), "--seeds", "1", "--scale", "3"]) == 0
    assert main(Toy(), ["--out", str(a), "--merge", str(c), "--report-only"]) == 2
    assert "another configuration (scale differ)" in capsys.readouterr().err


def test_units_run_in_worker_processes(tmp_path: Path) -> None:
    out = tmp_path / "toy.json"
    assert main(Toy(), ["--out", str(out), "--seeds", "1", "--workers", "2"]) == 0
    assert json.loads(out.read_text())["results"] == {"0": {"p": {"value": 0, "seconds": 0.0}, "q": {"value": 10, "seconds": 0.0}}}  # fmt: skip  # noqa: E501


# -- provenance -------------------------------------------------------------------------------
def test_provenance_names_the_commit_machine_and_every_sitting() -> None:
    assert relative(ROOT / "benchmarks" / "x.json") == "benchmarks/x.json"
    outside = relative("/tmp/elsewhere/x.json")
    assert not os.path.isabs(outside) and outside.endswith("elsewhere/x.json")
    assert command(["benchmarks/x.py", "--out", str(ROOT / "o.json")]) == "python benchmarks/x.py --out o.json"
    named = command(["benchmarks/x.py", f"--test=Set12={ROOT / 'sets' / 'Set12'}", f"--test=Set12={ROOT}/a=b"])
    assert named == "python benchmarks/x.py --test=Set12=sets/Set12 --test=Set12=a=b"  # NAME=PATH values too
    assert command(["benchmarks/x.py", f"Set12={ROOT / 'sets'}"]) == "python benchmarks/x.py Set12=sets"
    first = provenance(Sitting(["benchmarks/x.py"], threads=2))
    for field in FIELDS:
        assert field in first, field
    assert first["threads"] == 2 and len(first["commit"]) == 40 and isinstance(first["dirty"], bool)
    assert first["cores"] == os.cpu_count() and first["cpu"] and len(first["load_start"]) == 3
    again = provenance(Sitting(["benchmarks/x.py"]), first)
    assert len(again["sittings"]) == 2 and again["wall_seconds"] == pytest.approx(
        first["wall_seconds"] + again["sittings"][1]["wall_seconds"]
    )
    recovered = {"recovered": "from git", "command": "python x.py", "commit": "0" * 40, "wall_seconds": None}
    later = provenance(Sitting(["benchmarks/x.py"]), {**recovered, "sittings": [recovered]})
    assert later["wall_seconds"] is None and later["recovered"] == "earlier sittings: from git"
