"""The training the benchmarks share: mirl on the sample recipe, as `lotteryir prune` trains it.

cost_quality, stability and task_tickets train the configuration of lottery_tickets (identity init,
L1, 600 steps at lr 4e-3, patch 48, batch 8, global scope, rewind to init); their command-line flags
for it and the run configuration are defined here once, so the three cannot drift apart.
"""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

import torch

from lotteryir.pruning import Mask
from lotteryir.runs import RunConfig, RunLayout
from lotteryir.runs.config import SAMPLE_INIT, SAMPLE_LOSS, SAMPLE_LR, SAMPLE_PATCH


def add_training_args(p: argparse.ArgumentParser) -> None:
    """--seeds, --seed0, --size, --steps, --lr, --patch, --batch (lottery_tickets' defaults)."""
    p.add_argument("--seeds", type=int, default=3, help="seeds seed0 .. seed0+N-1 (default 3)")
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--size", default="tiny", help="mirl size (default tiny)")
    p.add_argument("--steps", type=int, default=600, help="optimizer steps per training (default 600)")
    p.add_argument("--lr", type=float, default=SAMPLE_LR)
    p.add_argument("--patch", type=int, default=SAMPLE_PATCH)
    p.add_argument("--batch", type=int, default=8)


def sample_config(args: argparse.Namespace, seed: int, **settings: Any) -> RunConfig:
    """The run configuration of one seed; ``settings`` (rate, rounds, method, data_paths, ...) add to it."""
    return RunConfig(
        model="mirl",
        size=args.size,
        recipe="sample",
        scope="global",
        rewind="init",
        steps=args.steps,
        batch_size=args.batch,
        patch_size=args.patch,
        lr=args.lr,
        loss=SAMPLE_LOSS,
        init=SAMPLE_INIT,
        seed=seed,
        device=args.device,
        threads=args.threads,
        **settings,
    )


def training_record(args: argparse.Namespace, n_test: int) -> dict[str, Any]:
    """What defines the shared training and its scores in a results file (resumes and reuses compare it)."""
    return {
        "model": f"mirl/{args.size}",
        "steps": args.steps,
        "lr": args.lr,
        "loss": SAMPLE_LOSS,
        "init": SAMPLE_INIT,
        "patch": args.patch,
        "batch": args.batch,
        "rate": args.rate,
        "test_degradations": args.test_degradations,
        "test_images_per_set": n_test,
        "threads": args.threads,
        "device": args.device,
    }


def environment() -> dict[str, Any]:
    """The machine a results file was measured on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


def empty_tensors(run_dir: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """The tensors a round's mask pruned to nothing (each one cuts the network), and how many it has.

    Tensors the forward never uses (snip/synflow list them as unscored in the round's method facts)
    cut nothing and are not counted. Empty when the round saved no mask (the dense round).
    """
    mask_file = RunLayout(run_dir).mask(entry["round"])
    if not mask_file.is_file():
        return {}
    mask = Mask.load(mask_file)
    unused = set(entry.get("method", {}).get("unscored", []))
    return {"empty_tensors": [k for k in mask if not bool(mask[k].any()) and k not in unused], "tensors": len(mask)}
