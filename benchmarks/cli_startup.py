"""How fast the command line answers: every ``--help`` and ``import lotteryir``, each in a fresh interpreter.

    python benchmarks/cli_startup.py                      # this checkout, 5 repetitions, ~1 min
    python benchmarks/cli_startup.py --baseline de34fc5   # side by side with a commit, ~8 min on 2 cores

Each row is a new process (what a user's shell starts): its wall time and its CPU time (user + sys,
which a loaded machine inflates far less than wall time), medians over the repetitions. ``python -c
pass`` and ``import torch`` stand beside them as the floor and what a help that loads torch cannot
beat. With ``--baseline REF`` the same rows run on ``git archive REF`` too, interleaved repetition by
repetition so both see the same load, with the ratios. Writes ``benchmarks/results/cli_startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from harness import Sitting, provenance

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COMMANDS = ("compare", "evaluate", "export", "models", "prune", "recipes", "report", "restore", "stability", "web")


def rows() -> dict[str, list[str]]:
    """Row name -> the interpreter arguments it runs."""
    table = {
        "python -c pass": ["-c", "pass"],
        "import torch": ["-c", "import torch"],
        "import lotteryir": ["-c", "import lotteryir"],
        "lotteryir --help": ["-m", "lotteryir", "--help"],
    }
    table.update({f"lotteryir {c} --help": ["-m", "lotteryir", c, "--help"] for c in COMMANDS})
    return table


def timed(args: list[str], code: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running ``args`` with ``code`` first on its path."""
    env = {**os.environ, "PYTHONPATH": str(code), "COLUMNS": "100"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, cwd=code)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {code.name}: {done.stderr.decode()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def export(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` (``git archive``) under ``folder``."""
    archive = folder / "ref.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", ref], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", help="A git commit to time side by side (git archive of it).")
    parser.add_argument("--out", type=Path, default=RESULTS / "cli_startup.json")
    args = parser.parse_args()
    sitting = Sitting()  # the results file's provenance
    started, load_start = time.perf_counter(), os.getloadavg()
    commit, changed = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no").splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this": ROOT}
        if args.baseline:
            trees["baseline"] = export(args.baseline, Path(tmp))
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {name: {t: [] for t in trees} for name in rows()}
        for _ in range(args.repeats):
            for name, argv in rows().items():
                for tree, code in trees.items():  # interleaved: both trees see the same load
                    samples[name][tree].append(timed(argv, code))
    table = []
    for name, by_tree in samples.items():
        row: dict[str, object] = {"row": name}
        for tree, values in by_tree.items():
            row[f"{tree}_wall_s"] = statistics.median(v[0] for v in values)
            row[f"{tree}_cpu_s"] = statistics.median(v[1] for v in values)
        if args.baseline:
            row["wall_ratio"] = row["this_wall_s"] / row["baseline_wall_s"]  # type: ignore[operator]
            row["cpu_ratio"] = row["this_cpu_s"] / row["baseline_cpu_s"]  # type: ignore[operator]
        table.append(row)
    result = {
        "command": "python benchmarks/cli_startup.py " + " ".join(sys.argv[1:]),
        "commit": commit,
        "dirty": [line[3:] for line in changed],  # tracked files changed when the run started (paths in the checkout)
        "baseline": git("rev-parse", args.baseline) if args.baseline else None,
        "repeats": args.repeats,
        "statistic": "median over repeats of one fresh process each; cpu = user + sys",
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "threads": "one process at a time",
            "load_start": load_start,
            "load_end": os.getloadavg(),
        },
        "torch": version("torch"),
        "torchvision": version("torchvision"),
        "total_wall_s": time.perf_counter() - started,
        "rows": table,
        # threads: what each timed process starts with (this times start-up, not arithmetic)
        "provenance": provenance(sitting, threads="each process's default"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    columns = ["wall s", "cpu s"] + (["base wall", "base cpu", "wall x", "cpu x"] if args.baseline else [])
    keys = ["this_wall_s", "this_cpu_s"] + ["baseline_wall_s", "baseline_cpu_s", "wall_ratio", "cpu_ratio"]
    print(f"{'':28}" + "".join(f"{c:>10}" for c in columns))
    for row in table:
        print(f"{row['row']:28}" + "".join(f"{row[k]:10.2f}" for k in keys[: len(columns)]))
    load = f"load {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    print(f"{load}; wrote {args.out}")


if __name__ == "__main__":
    main()
