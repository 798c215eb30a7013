"""Cost of training with pruning masks attached versus the same network unpruned.

One training step (forward, L1 loss, backward, AdamW step) of MIR-L (default
size "small") on CPU, with masks of density 0.8**10 = 0.107 attached through
torch.nn.utils.prune conventions (``weight = weight_orig * weight_mask`` in a
forward pre-hook) against the unpruned network from the same initialisation.
Steps alternate between the two (in ABBA order, so drift in machine load hits
both alike) and the medians are compared. Target: masked <= 1.03x dense.

    python benchmarks/mask_overhead.py [--reps 10 --batch 8 --patch 128 --out result.json]

The mask costs a fixed amount per step (one multiply per masked tensor forward
and backward), so the ratio grows as the step shrinks: also try --batch 2 --patch 64.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lotteryir.models import build_model
from lotteryir.pruning import Mask, attach_masks, global_magnitude, select_prunable


def masked_copy(model: torch.nn.Module, rounds: int = 10, rate: float = 0.2) -> tuple[torch.nn.Module, float]:
    """A copy of ``model`` with a global-magnitude mask from ``rounds`` prunings at ``rate``."""
    pruned = copy.deepcopy(model)
    params = dict(pruned.named_parameters())
    weights = {n: params[n].detach() for n in select_prunable(pruned)}
    mask = Mask.ones_like(weights)
    for _ in range(rounds):
        mask = global_magnitude(weights, mask, rate)
    attach_masks(pruned, mask)
    return pruned, mask.density


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)

    def step() -> tuple[float, float, float]:
        """Seconds spent in forward (with loss), backward, and the optimizer step."""
        t0 = time.perf_counter()
        loss = F.l1_loss(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="MIR-L size: tiny, small or full")
    # PromptIR's training defaults: batch 8 per GPU, 128x128 patches.
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--reps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (1 keeps timings stable on a shared machine)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dense = build_model("mirl", args.size).train()
    masked, density = masked_copy(dense)
    g = torch.Generator().manual_seed(1)
    y = torch.rand(args.batch, 3, args.patch, args.patch, generator=g)
    x = (y + 0.1 * torch.randn(y.shape, generator=g)).clamp(0, 1)
    steps = {"dense": make_step(dense, x, y), "masked": make_step(masked, x, y)}

    for _ in range(args.warmup):
        steps["dense"]()
        steps["masked"]()
    phases: dict[str, list[tuple[float, float, float]]] = {"dense": [], "masked": []}
    for rep in range(args.reps):
        order = ("dense", "masked") if rep % 2 == 0 else ("masked", "dense")
        for name in order:
            phases[name].append(steps[name]())

    times = {k: [sum(p) for p in v] for k, v in phases.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    phase_med = {k: [statistics.median(p[i] for p in v) for i in range(3)] for k, v in phases.items()}
    pair_ratios = [m / d for m, d in zip(times["masked"], times["dense"])]
    ratio = med["masked"] / med["dense"]
    result = {
        "model": f"mirl/{args.size}",
        "density": density,
        "batch": args.batch,
        "patch": args.patch,
        "threads": args.threads,
        "reps": args.reps,
        "median_seconds": med,
        "median_phase_seconds": {k: dict(zip(("forward", "backward", "optimizer"), v)) for k, v in phase_med.items()},
        "ratio_of_medians": ratio,
        "median_pair_ratio": statistics.median(pair_ratios),
        "target": 1.03,
        "passes": ratio <= 1.03,
        "times": times,
    }
    print(f"MIR-L {args.size}, CPU, batch {args.batch}x{args.patch}x{args.patch}, {args.threads} threads, density {density:.4f}")
    print(f"{'':8} {'median s':>9} {'min s':>8} {'max s':>8} {'fwd ms':>8} {'bwd ms':>8} {'optim ms':>9}")
    for k, v in times.items():
        f, b, o = (1000 * t for t in phase_med[k])
        print(f"{k:8} {med[k]:>9.4f} {min(v):>8.4f} {max(v):>8.4f} {f:>8.1f} {b:>8.1f} {o:>9.1f}")
    print(f"masked / dense: {ratio:.3f} (median of pair ratios {result['median_pair_ratio']:.3f}; target <= 1.03: "
          f"{'pass' if result['passes'] else 'FAIL'})")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
