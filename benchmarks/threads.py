"""Training speed with and without another busy process: lotteryir's thread policy vs one thread.

Each measurement is a fresh Python process that trains mirl/tiny on the sample recipe as
`lotteryir prune` builds it (``lotteryir.runs.build_run``: batch 8, 48x48 patches) and reports
optimizer steps per second over the steps after a short warm-up. Four ways to run it:

  lotteryir      the run's default (threads not given): the cores idle when training starts
  1 thread       OMP_NUM_THREADS=1, the old advice in the README
  torch default  torch's one thread per core, what 0.1 did
  passive wait   torch's threads with OMP_WAIT_POLICY=PASSIVE, the alternative that was rejected

each on a quiet machine and while one competing process keeps a core busy (a Python busy loop),
interleaved over repetitions; medians, and the ratio of lotteryir's steps/s to one thread's.
Targets: >= 0.9 with the busy process, and not slower than one thread on a quiet machine.

    python benchmarks/threads.py [--reps 3] [--steps 60] [--out benchmarks/results/threads.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import Sitting, provenance

ROOT = Path(__file__).resolve().parents[1]
MODES = ("lotteryir", "1 thread", "torch default", "passive wait")
WARMUP = 10


def worker(mode: str, steps: int) -> None:
    """Train and print one JSON line: steps/s after the warm-up, threads used."""
    import torch

    from lotteryir.pruning import RoundContext
    from lotteryir.runs import RunConfig, build_run

    # lotteryir and 1 thread: the run's own choice (the idle cores; OMP_NUM_THREADS=1 wins). The
    # others keep torch's count, the one it started this process with.
    threads = None if mode in ("lotteryir", "1 thread") else torch.get_num_threads()
    stamps: dict[int, float] = {}
    config = RunConfig(
        model="mirl",
        size="tiny",
        recipe="sample",
        rounds=0,
        steps=steps,
        batch_size=8,
        patch_size=48,
        lr=1e-3,
        loss="l1",
        init="default",
        seed=0,
        device="cpu",
        threads=threads,
    ).resolved()
    built = build_run(config, progress=lambda p: stamps.__setitem__(p.step, time.perf_counter()))
    model, trainer = built.model, built.trainer
    trainer(model, RoundContext(round=0, density=1.0, seed=0))
    rate = (steps - WARMUP) / (stamps[steps] - stamps[WARMUP])
    print(
        json.dumps(
            {
                "steps_per_sec": rate,
                "threads": torch.get_num_threads(),
                "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
            }
        )
    )


def measure(mode: str, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if mode == "1 thread":
        env["OMP_NUM_THREADS"] = "1"
    if mode == "passive wait":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, "--steps", str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, default=60, help="optimizer steps per measurement (the first 10 are warm-up)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "threads.json")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    if args.worker:
        worker(args.worker, args.steps)
        return
    if args.steps <= WARMUP:
        parser.error(f"--steps must exceed the {WARMUP} warm-up steps")

    results: dict[str, dict[str, list[dict]]] = {"quiet": {m: [] for m in MODES}, "busy": {m: [] for m in MODES}}
    for condition in ("quiet", "busy"):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "busy" else None
        try:
            time.sleep(1.0 if hog else 0.0)
            for rep in range(args.reps):
                for mode in MODES:  # interleaved, so slow drifts of the machine hit every mode alike
                    results[condition][mode].append(measure(mode, args.steps))
                    print(
                        f"  {condition:5s} rep {rep + 1}/{args.reps} {mode:13s} "
                        f"{results[condition][mode][-1]['steps_per_sec']:.2f} steps/s",
                        file=sys.stderr,
                    )
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()

    rows = []
    for condition, by_mode in results.items():
        med = {m: statistics.median(r["steps_per_sec"] for r in runs) for m, runs in by_mode.items()}
        for mode in MODES:
            rows.append(
                {
                    "condition": condition,
                    "mode": mode,
                    "steps_per_sec": med[mode],
                    "threads": by_mode[mode][-1]["threads"],
                    "vs_1_thread": med[mode] / med["1 thread"],
                }
            )
    print(
        f"\nmirl/tiny training, batch 8, 48x48; medians of {args.reps}; {os.cpu_count()} cores; "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'condition':10s} {'mode':14s} {'threads':>7s} {'steps/s':>8s} {'vs 1 thread':>12s}")
    for r in rows:
        print(
            f"{r['condition']:10s} {r['mode']:14s} {r['threads']:7d} {r['steps_per_sec']:8.2f} "
            f"{r['vs_1_thread']:11.2f}x"
        )
    busy = next(r for r in rows if r["condition"] == "busy" and r["mode"] == "lotteryir")["vs_1_thread"]
    quiet = next(r for r in rows if r["condition"] == "quiet" and r["mode"] == "lotteryir")["vs_1_thread"]
    print(
        f"target: busy >= 0.90 -> {busy:.2f} ({'met' if busy >= 0.9 else 'MISSED'}); "
        f"quiet not slower than 1 thread -> {quiet:.2f}"
    )
    import torch

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "threads",
                "reps": args.reps,
                "steps": args.steps,
                "rows": rows,
                "raw": results,
                "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "torch": torch.__version__},
                "provenance": provenance(sitting),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
