"""How a results file was made: command, commit, machine, threads, load and wall time over every sitting.

Every results file under ``benchmarks/results/`` carries a ``provenance`` record
(``tests/benchmarks/test_provenance.py`` checks them). A resumable benchmark runs in several
sittings; each appends its own record to ``sittings`` and the wall time is their sum. Paths are
written relative to the checkout, so a file names no home directory.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The environment variables that change a timing or a result: recorded when set.
ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "CUDA_VISIBLE_DEVICES")
# What a complete record holds; a record recovered from git history marks itself and may hold nulls.
FIELDS = ("command", "commit", "dirty", "platform", "cpu", "cores", "threads", "torch", "load_start", "load_end")
FIELDS += ("wall_seconds", "sittings")


def relative(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the checkout (``../`` steps for a path outside it): never absolute."""
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        try:
            return Path(os.path.relpath(p, ROOT)).as_posix()
        except ValueError:  # another drive (Windows): the name alone
            return p.name


def command(argv: list[str] | None = None) -> str:
    """The command line as typed from the checkout: ``python benchmarks/x.py ...``, paths relative."""
    argv = list(sys.argv if argv is None else argv)
    return " ".join(["python", relative(argv[0]), *(_word(a) for a in argv[1:])])


def _word(arg: str) -> str:
    """An argument with its path made relative: a whole path, or the value of NAME=PATH or --flag=PATH."""
    if os.path.isabs(arg):
        return relative(arg)
    for i, c in enumerate(arg):  # the first "=" that a path follows (--test=Set12=/data/Set12)
        if c == "=" and os.path.isabs(arg[i + 1 :]):
            return f"{arg[: i + 1]}{relative(arg[i + 1 :])}"
    return arg


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit() -> tuple[str | None, bool | None]:
    """(HEAD's hash, whether the checkout differs from it), results files aside: a sitting that
    resumes a results file it wrote itself is not made on a dirty tree by that file."""
    head = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results")
    return head, None if status is None else bool(status)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """The cores this process may run on (fewer than the machine's under taskset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """The machine and software a measurement ran on."""
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = None
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable_cores(),  # fewer under taskset
        "python": platform.python_version(),
        "torch": torch,
    }


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


class Sitting:
    """One invocation of a benchmark, from its start: what ran, on which commit, under what load."""

    def __init__(self, argv: list[str] | None = None, threads: int | None = None) -> None:
        self._t0 = time.perf_counter()
        head, dirty = commit()
        self.record: dict[str, Any] = {
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command(argv),
            "cwd": relative(os.getcwd()),
            "commit": head,
            "dirty": dirty,
            "env": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
            "threads": threads,
            "load_start": _load(),
            "load_end": None,
            "wall_seconds": 0.0,
        }

    def stamp(self, threads: int | None = None) -> dict[str, Any]:
        """The record as of now (wall time so far, the load now); threads: given, or torch's own count."""
        if threads is not None:
            self.record["threads"] = threads
        elif self.record["threads"] is None and "torch" in sys.modules:
            self.record["threads"] = sys.modules["torch"].get_num_threads()
        self.record.update(wall_seconds=round(time.perf_counter() - self._t0, 3), load_end=_load())
        return dict(self.record)


def total_wall(sittings: list[dict[str, Any]]) -> float | None:
    """The sittings' wall time summed (null when one of them is unknown, as in a recovered record)."""
    walls = [s.get("wall_seconds") for s in sittings]
    return None if None in walls else round(sum(walls), 3)


def provenance(sitting: Sitting, previous: dict[str, Any] | None = None, threads: int | None = None) -> dict[str, Any]:
    """The ``provenance`` record of a results file: this sitting on this machine, after ``previous``'s sittings.

    The top level describes the latest sitting; ``sittings`` lists every one and ``wall_seconds``
    is their sum (null when an earlier sitting's time is unknown, as in a record recovered from git
    history, which stays marked ``recovered``).
    """
    now = sitting.stamp(threads)
    before = list((previous or {}).get("sittings") or [])
    if previous and not previous.get("sittings"):  # a recovered record without sittings is one sitting
        before = [{k: previous.get(k) for k in ("command", "commit", "recovered", "wall_seconds")}]
    sittings = [*before, now]
    out = {
        "command": now["command"],
        "commit": now["commit"],
        "dirty": now["dirty"],
        **machine(),
        "threads": now["threads"],
        "env": now["env"],
        "load_start": now["load_start"],
        "load_end": now["load_end"],
        "wall_seconds": total_wall(sittings),
        "sittings": sittings,
    }
    recovered = [s["recovered"] for s in before if s.get("recovered")]
    if recovered:
        out["recovered"] = "earlier sittings: " + "; ".join(recovered)
    return out
