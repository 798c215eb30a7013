"""Loader throughput of the all-in-one sample recipe against what training consumes.

Measures 64x64 training patches per second delivered by a DataLoader (batch 8, shuffled) over
the sample recipe's six tasks, with 0 and 2 workers; and, when lotteryir.models offers the
MIR-L "tiny" network, the patches per second one training step consumes (forward, L1 loss,
backward, AdamW at batch 8, 64x64). The issue asks for loader >= 5x training.

Prints a table (medians over repetitions) and writes JSON.

    python benchmarks/data_throughput.py [--reps 3] [--batches 40] [--out benchmarks/results/data_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from harness import Sitting, provenance
from torch.utils.data import DataLoader

from lotteryir.data import get_recipe

ROOT = Path(__file__).resolve().parents[1]


def loader_rate(dataset, workers: int, batches: int, batch_size: int, rep: int) -> float:
    """Patches per second over ``batches`` batches, after the first (worker start-up excluded)."""
    dataset.set_epoch(rep)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(rep),
        drop_last=True,
    )
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - start
    assert batch["input"].shape == (batch_size, 3, 64, 64)
    del iterator
    return batches * batch_size / elapsed


def training_rate(batch_size: int, steps: int) -> float | None:
    """Patches per second of MIR-L tiny training steps, or None without lotteryir.models."""
    try:
        from lotteryir.models import build_model

        model = build_model("mirl", "tiny")
    except Exception as exc:  # the models package may not offer it yet
        print(f"(no training comparison: {type(exc).__name__}: {exc})")
        return None
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 3, 64, 64, generator=generator)
    y = torch.rand(batch_size, 3, 64, 64, generator=generator)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(model(x), y).backward()
        optimizer.step()

    step()  # warm-up: allocator, optimizer state
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batches", type=int, default=40, help="batches timed per loader repetition")
    ap.add_argument("--steps", type=int, default=5, help="training steps timed")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "data_throughput.json")
    args = ap.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    batch_size, patch = 8, 64

    start = time.perf_counter()
    dataset = get_recipe("sample").train_dataset(patch_size=patch, seed=0)
    build_s = time.perf_counter() - start
    print(
        f"sample recipe: {len(dataset)} patches/epoch over {len(dataset.tasks)} tasks, built in {build_s:.2f} s; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    loader = {}
    for workers in args.workers:
        rates = [loader_rate(dataset, workers, args.batches, batch_size, rep) for rep in range(args.reps)]
        loader[workers] = statistics.median(rates)
    train = training_rate(batch_size, args.steps)

    print(f"\n{patch}x{patch} patches per second, batch {batch_size}, median of {args.reps} repetitions")
    print(f"{'what':<34} {'patches/s':>10} {'x training':>11}")
    for workers, rate in loader.items():
        ratio = f"{rate / train:>11.1f}" if train else f"{'-':>11}"
        print(f"{f'loader, {workers} worker(s)':<34} {rate:>10.1f} {ratio}")
    if train:
        print(f"{'training: MIR-L tiny fwd+bwd+AdamW':<34} {train:>10.1f} {1.0:>11.1f}")
        best = max(loader.values()) / train
        print(f"\nloader / training = {best:.1f}x (target >= 5x): {'ok' if best >= 5 else 'TOO SLOW'}")

    result = {
        "benchmark": "data_throughput",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "threads": torch.get_num_threads(),
        },
        "torch": torch.__version__,
        "recipe": "sample",
        "patch_size": patch,
        "batch_size": batch_size,
        "reps": args.reps,
        "build_seconds": build_s,
        "loader_patches_per_s": {str(w): r for w, r in loader.items()},
        "training_patches_per_s": train,
        "ratio_best_loader_to_training": (max(loader.values()) / train) if train else None,
        "provenance": provenance(sitting),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
