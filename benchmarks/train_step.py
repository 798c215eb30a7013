"""Training steps per second, eager against ``--compile``, as ``lotteryir prune`` trains: does compiling pay?

For each MIR-L size and patch size, a masked network (density 0.8**10 = 0.107, attached by the public
``IterativeMagnitudePruner``) trains through the shipped ``RestorationTrainer`` (L1, AdamW, its warm-up
and cosine), once eagerly and once with ``TrainConfig(compile=True)`` (what ``prune --compile`` sets),
then eagerly again so that drift in the machine's load shows. Per run: the first step's seconds
(compiling included), the median of the later steps, and for the compiled one the compile overhead
(first step minus a steady step) and the number of steps from which compiling pays:
overhead / (eager step - compiled step). A run of the sample recipe trains 600 steps per round.

    python benchmarks/train_step.py                 # tiny, small, full x patches 48 (sample), 64 (paper)
    python benchmarks/train_step.py --sizes tiny,small   # the docs' table (full needs an hour here)
    python benchmarks/train_step.py --quick         # tiny and small at patch 48

Writes benchmarks/results/train_step.json and prints the table. CPU time is reported beside wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from harness import Sitting, provenance

from lotteryir.engine import RestorationTrainer, TrainConfig
from lotteryir.models import build_model
from lotteryir.pruning import IterativeMagnitudePruner, PruningWarning, RoundContext

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "train_step.json"


class Patches(torch.utils.data.Dataset):
    def __init__(self, n: int, size: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.clean = torch.rand(n, 3, size, size, generator=g)
        self.noisy = (self.clean + 0.1 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input": self.noisy[i], "target": self.clean[i]}


def masked(size: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("mirl", size)
    pruner = IterativeMagnitudePruner(model, rate=0.2)
    with warnings.catch_warnings():  # an untrained network loses whole layers at 0.107: expected here
        warnings.simplefilter("ignore", PruningWarning)
        for _ in range(10):
            pruner.prune()
    return model


def train(model: torch.nn.Module, patch: int, batch: int, steps: int, compile_: bool, threads: int) -> dict:
    """Seconds of each optimizer step of one round of ``steps`` (wall and CPU)."""
    marks: list[tuple[float, float]] = []
    start = (time.perf_counter(), time.process_time())

    def progress(_p) -> None:
        marks.append((time.perf_counter(), time.process_time()))

    config = TrainConfig(steps=steps, batch_size=batch, lr=2e-4, threads=threads, checkpoint_every=None)
    config.compile = compile_
    trainer = RestorationTrainer(Patches(batch * steps, patch), config, progress=progress)
    trainer(model, RoundContext(round=1, density=0.107))
    points = [start, *marks]
    wall = [b[0] - a[0] for a, b in zip(points, points[1:])]
    cpu = [b[1] - a[1] for a, b in zip(points, points[1:])]
    return {"first_s": wall[0], "steady_s": statistics.median(wall[2:]), "steady_cpu_s": statistics.median(cpu[2:])}


def measure(size: str, patch: int, batch: int, steps: int, threads: int) -> dict:
    model = masked(size)
    torch._dynamo.reset()
    runs = {"eager": train(model, patch, batch, steps, False, threads)}
    runs["compiled"] = train(model, patch, batch, steps, True, threads)
    runs["eager_again"] = train(model, patch, batch, steps, False, threads)
    eager = statistics.fmean([runs["eager"]["steady_s"], runs["eager_again"]["steady_s"]])
    compiled = runs["compiled"]["steady_s"]
    overhead = runs["compiled"]["first_s"] - compiled
    saving = eager - compiled
    return {
        "size": size,
        "patch": patch,
        "batch": batch,
        "params": sum(p.numel() for p in model.parameters()),
        "runs": runs,
        "eager_steps_per_s": 1 / eager,
        "compiled_steps_per_s": 1 / compiled,
        "speedup": eager / compiled,
        "compile_overhead_s": overhead,
        "pays_after_steps": overhead / saving if saving > 0 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,small,full")
    parser.add_argument("--patches", default="48,64")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    # One intra-op thread by default: on a shared 2-core machine more threads make eager steps swing by
    # 10x with the load (OpenMP threads wait on each other), which would decide the comparison.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny and small at patch 48")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    sizes, patches = args.sizes.split(","), [int(p) for p in args.patches.split(",")]
    if args.quick:
        sizes, patches = ["tiny", "small"], [48]
    rows = []
    head = ("size", "patch", "eager/s", "compiled/s", "speedup", "compile s", "pays after")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (6, 5, 8, 10, 7, 9, 10))))
    for size in sizes:
        for patch in patches:
            row = measure(size, patch, args.batch, args.steps, args.threads)
            rows.append(row)
            pays = "never" if row["pays_after_steps"] is None else f"{row['pays_after_steps']:.0f} steps"
            print(
                f"{size:>6} {patch:>5} {row['eager_steps_per_s']:8.2f} {row['compiled_steps_per_s']:10.2f} "
                f"{row['speedup']:7.2f} {row['compile_overhead_s']:9.1f} {pays:>10}",
                flush=True,
            )
    result = {
        "command": " ".join(["python", "benchmarks/train_step.py", *sys.argv[1:]]),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "rows": rows,
        "provenance": provenance(sitting, threads=args.threads),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
