"""The runner every benchmark shares: its command line, the plan and estimate, resume, and the sittings.

A benchmark is a :class:`Benchmark` subclass that declares its grid (``units``: what to run, per
seed) and its reading of the results (``summarize``, ``markdown``, ``figure``); ``main`` does the
rest in one order for all of them:

1. parse the common command line (seeds, workers, threads, out and work paths, --smoke, --quick,
   --dry-run, --report-only) and the benchmark's own flags;
2. --report-only: rebuild the table and figure from the results file, train nothing;
3. one build of the benchmark's run (``probe``) gives the test sets and a measured step; the
   results file is resumed if its configuration is this one (refused otherwise: another --out);
4. the plan: the units not finished yet and their estimate (measured now) is printed first;
   --dry-run stops there;
5. the units run (``--workers`` at a time); after each, the results file, table and figure are
   rewritten atomically with the provenance of every sitting so far.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .outputs import write_outputs
from .provenance import ROOT, Sitting, provenance, relative, usable_cores
from .units import Timing, Unit, estimate, execute, put

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work"


class Refused(Exception):
    """A problem the person running the benchmark can fix: one line, exit status 2."""


class Benchmark:
    """A benchmark's declaration; override what differs (the defaults describe a plain benchmark)."""

    name = ""  # benchmarks/results/<name>.json, benchmarks/work/<name>
    script = ""  # the file the results file's command names (default: the declaring module's)
    doc = ""  # what --help shows (default: the declaring module's docstring)
    seeds = 3  # default --seeds
    threads = "1"  # default --threads
    workers = 1  # default --workers
    grows = ("seeds",)  # configuration entries a later sitting may extend
    depth = 2  # --merge: results entries this deep are one unit's (taken whole from the other file)
    notes = ""  # what the estimate assumes, printed after it
    view: Any = None  # the module with its markdown(report, a) and figure(report, a, path) (benchmarks/reports/)

    # -- the command line ------------------------------------------------------------------
    def options(self, p: argparse.ArgumentParser) -> None:
        """The benchmark's own flags."""

    def presets(self, a: argparse.Namespace, p: argparse.ArgumentParser) -> None:
        """What --quick and --smoke set, and the checks of the flags (``p.error``)."""

    # -- the run ---------------------------------------------------------------------------
    def probe(self, a: argparse.Namespace) -> Any:
        """One build of the benchmark's run (``build_run``): the test sets and the measured step come from it."""
        return None

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        """What defines the results: a later sitting must have the same (``grows`` aside)."""
        return {}

    def prepare(self, a: argparse.Namespace, report: dict[str, Any], probe: Any) -> None:
        """Before the plan: what a sitting takes from elsewhere (a reused results file) or drops."""

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        """The units not finished yet, in running order."""
        raise NotImplementedError

    def finish(self, a: argparse.Namespace, report: dict[str, Any]) -> None:
        """After the units, before the last write: what needs every finished unit."""

    def describe(self, a: argparse.Namespace, probe: Any) -> str:
        """The plan's first line: what runs."""
        return self.name

    def say(self, unit: Unit, result: dict[str, Any]) -> str:
        """One line on a finished unit."""
        return "done"

    # -- the report ------------------------------------------------------------------------
    def reread(self, a: argparse.Namespace, report: dict[str, Any]) -> None:
        """--report-only: take what the table describes from the file, not from this invocation's defaults."""

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        raise NotImplementedError

    def markdown(self, report: dict[str, Any], a: argparse.Namespace) -> str:
        """The tables (default: the view's)."""
        return self.view.markdown(report, a)

    def figure(self, report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
        """Draw the figure to ``path`` (``outputs.save_figure``; default: the view's, if it has one)."""
        if hasattr(self.view, "figure"):
            self.view.figure(report, a, path)

    def grow(self, key: str, old: list[Any], new: list[Any]) -> list[Any]:
        """A growing configuration entry after a sitting (default: the sorted union)."""
        return sorted({*old, *new})

    # -- shared ----------------------------------------------------------------------------
    def write(self, report: dict[str, Any], a: argparse.Namespace) -> str:
        """JSON, table and figure of ``report`` (atomically); the table's text."""
        return write_outputs(
            report,
            a.out,
            lambda r: self.summarize(r, a),
            lambda r: self.markdown(r, a),
            lambda r, path: self.figure(r, a, path),
        )


def ints(p: argparse.ArgumentParser, flag: str, text: str, least: int = 0) -> list[int]:
    """A flag's comma-separated integers, sorted and unique (``p.error`` names the flag otherwise)."""
    try:
        values = sorted({int(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        p.error(f"{flag} must be comma-separated integers, got {text!r}")
    if not values or values[0] < least:
        p.error(f"{flag} must be integers >= {least}, got {text!r}")
    return values


def declared(bench: Benchmark) -> tuple[str, str]:
    """(script, doc) of a benchmark: its own, else its module's file and docstring."""
    module = sys.modules.get(type(bench).__module__)
    script = bench.script or getattr(module, "__file__", None) or sys.argv[0]
    return script, bench.doc or getattr(module, "__doc__", None) or ""


def seeds(a: argparse.Namespace) -> list[int]:
    """The seeds of this sitting: seed0 .. seed0 + seeds - 1."""
    return list(range(a.seed0, a.seed0 + a.seeds))


def parse(bench: Benchmark, argv: list[str] | None = None) -> argparse.Namespace:
    """The common command line, the benchmark's flags and presets."""
    p = argparse.ArgumentParser(
        description=declared(bench)[1].split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, default=bench.seeds, help=f"seeds seed0 .. seed0+N-1 (default {bench.seeds})")
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--threads", default=bench.threads, help=f"CPU threads per worker: N or auto ({bench.threads})")
    p.add_argument("--workers", type=int, default=None, help=f"units run at once, in processes ({bench.workers})")
    p.add_argument("--device", default="cpu")
    default_out = RESULTS / f"{bench.name}.json"
    p.add_argument("--out", type=Path, default=default_out, help="JSON path; .md and .png go beside it")
    p.add_argument("--work", type=Path, default=None, help=f"run directories (default benchmarks/work/{bench.name})")
    p.add_argument("--quick", action="store_true", help="a short run (see above)")
    p.add_argument("--smoke", action="store_true", help="seconds: the test suite's run")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimate, then stop")
    p.add_argument("--report-only", action="store_true", help="rebuild the table and figure from --out")
    p.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        help="the results file of another sitting of this configuration (e.g. run in parallel with its own "
        "--out): its finished units are added to --out",
    )
    bench.options(p)
    a = p.parse_args(argv)
    bench.presets(a, p)
    a.workers = a.workers or bench.workers
    if a.threads == "auto":
        a.threads = None
    else:
        try:
            a.threads = int(a.threads)
        except (TypeError, ValueError):
            p.error(f"--threads must be 'auto' or a positive integer, got {a.threads!r}")
    if a.workers < 1 or (a.threads is not None and a.threads < 1) or a.seeds < 1:
        p.error("--seeds, --workers and --threads must be at least 1")
    if a.work is None:
        same = a.out.resolve() == default_out.resolve()
        a.work = WORK / bench.name if same else a.out.with_name(a.out.stem + "_work")
    return a


def resume(bench: Benchmark, out: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The results file of earlier sittings when it holds this configuration (``grows`` may differ), else a new one."""
    if not out.is_file():
        report: dict[str, Any] = {"benchmark": bench.name, "results": {}}
    else:
        report = json.loads(out.read_text())
        old = {k: v for k, v in report.get("config", {}).items() if k not in bench.grows}
        new = {k: v for k, v in config.items() if k not in bench.grows}
        if old != new:
            diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in {**old, **new} if old.get(k) != new.get(k)]
            raise Refused(
                f"{relative(out)} holds results of another configuration ({'; '.join(diff[:3])}); "
                "use another --out (and --work)"
            )
    before = report.get("config", {})
    grown = {k: bench.grow(k, before.get(k) or [], config.get(k) or []) for k in bench.grows if k in config}
    report["config"] = {**config, **grown}
    report.setdefault("results", {})
    return report


def merge(bench: Benchmark, report: dict[str, Any], others: list[Path]) -> None:
    """Add the finished units of other results files of the same configuration (``grows`` may differ)."""
    mine = {k: v for k, v in report.get("config", {}).items() if k not in bench.grows}
    for path in others:
        if not path.is_file():
            raise Refused(f"--merge {relative(path)}: no such file")
        other = json.loads(path.read_text())
        theirs = {k: v for k, v in other.get("config", {}).items() if k not in bench.grows}
        if theirs != mine:
            diff = sorted(k for k in {**mine, **theirs} if mine.get(k) != theirs.get(k))
            raise Refused(f"--merge {relative(path)}: another configuration ({', '.join(diff)} differ)")

        def add(into: dict[str, Any], new: dict[str, Any], level: int) -> None:
            for k, v in new.items():
                if level < bench.depth and isinstance(v, dict) and isinstance(into.get(k), dict):
                    add(into[k], v, level + 1)
                else:
                    into[k] = v

        add(report.setdefault("results", {}), other.get("results", {}), 1)
        c = report["config"]
        c.update({k: bench.grow(k, c.get(k) or [], other["config"].get(k) or []) for k in bench.grows if k in c})
        report.setdefault("merged", []).append(relative(path))


def measure(probe: Any, smoke: bool) -> tuple[float, float]:
    """Seconds per optimizer step and per evaluation of every test image, timed on the probe."""
    return probe.measure(steps=2 if smoke else 4) if probe is not None else (0.0, 0.0)


def main(bench: Benchmark, argv: list[str] | None = None) -> int:
    """Run ``bench`` as its command line says; the exit status."""
    a = parse(bench, argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if a.report_only:
            if not a.out.is_file():
                raise Refused(f"{relative(a.out)} does not exist; run the benchmark first")
            report = json.loads(a.out.read_text())
            merge(bench, report, a.merge)
            bench.reread(a, report)
            print(bench.write(report, a))
            return 0
        sitting = Sitting([declared(bench)[0], *(sys.argv[1:] if argv is None else argv)], a.threads)
        t0 = time.perf_counter()
        probe = bench.probe(a)
        build = time.perf_counter() - t0
        report = resume(bench, a.out, {**bench.config(a, probe), "seeds": seeds(a)})
        merge(bench, report, a.merge)
        bench.prepare(a, report, probe)
        todo = bench.units(a, report)
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    step, per_eval = measure(probe, a.smoke) if todo else (0.0, 0.0)
    threads = probe.threads.threads if probe is not None else a.threads
    t = Timing(step, per_eval, build, os.getloadavg()[0])
    plan = estimate(todo, t, a.workers, usable_cores(), threads or 1)
    kinds = {u.kind: sum(x.kind == u.kind for x in todo) for u in todo}
    print(bench.describe(a, probe))
    on = f", {plan['wall_seconds'] / 60:.1f} min on {a.workers} workers" if a.workers > 1 else ""
    print(
        f"  {len(todo)} unit(s) to run"
        + (f" ({', '.join(f'{n} {k}' for k, n in kinds.items())})" if kinds else "")
        + f"; measured {step * 1000:.0f} ms/step, {per_eval:.1f} s/evaluation, {build:.1f} s/build (load average "
        f"{t.load:.2f}) -> estimated {plan['work_seconds'] / 60:.1f} min on 1 worker{on}"
        + (f"; {bench.notes}" if bench.notes else ""),
        flush=True,
    )
    if a.dry_run:
        return 0
    report["timing"] = {
        "step_seconds": step,
        "eval_seconds": per_eval,
        "build_seconds": build,
        "estimate_seconds": plan["wall_seconds"],
        "load_average": t.load,
        "workers": a.workers,
    }
    del probe
    previous = report.get("provenance")

    def write() -> str:
        report["provenance"] = provenance(sitting, previous, threads)
        return bench.write(report, a)

    write()
    started, count = time.perf_counter(), 0

    def done(u: Unit, result: dict[str, Any], seconds: float) -> None:
        nonlocal count
        if u.store is None:
            put(report["results"], u.key, result)
        write()
        count += 1
        print(
            f"[{count}/{len(todo)}] {u.name()}: {bench.say(u, result)}; {seconds:.0f} s, "
            f"{(time.perf_counter() - started) / 60:.1f} min in all",
            flush=True,
        )

    failed, left = execute(todo, a.workers, done)
    bench.finish(a, report)
    text = write()
    print("\n" + text)
    made = [p for p in (a.out, a.out.with_suffix(".md"), a.out.with_suffix(".png")) if p.is_file()]
    print(f"wrote {', '.join(map(str, made))}; runs in {a.work}")
    if failed or left:
        print(f"error: {len(failed)} unit(s) failed, {len(left)} left waiting on them; rerun to retry", file=sys.stderr)
        return 1
    return 0
