"""Cost of training with pruning masks attached versus the same network unpruned, eager and compiled.

One training step (forward, L1 loss, backward, AdamW step) of MIR-L (default
size "small") on CPU, with masks of density 0.8**10 = 0.107 attached by an
``IterativeMagnitudePruner`` (torch.nn.utils.prune form: ``weight = weight_orig *
weight_mask`` in a forward pre-hook), against the unpruned network from the same
initialisation. Eager first, then both networks under ``torch.compile`` (inductor):
the graphs each one needs are counted, and a pruning round in between must not
make the masked one recompile.

Steps alternate between the two networks (ABBA, so drift in machine load hits
both alike). Reported: medians of wall-clock and of CPU time per step, and the
median of the per-pair ratios (CPU time survives other jobs on the machine best).
The same comparison of the dense network against an identical copy of itself
("noise floor") shows how much of a ratio the machine's noise alone makes.
Targets (the issue's, 2 cores, batch 8, patch 64): eager masked <= 1.02x eager
dense, compiled masked <= 1.05x compiled dense.

Also measured: the bytes of the masks and of the state dict, bool masks against
the float32 masks torch.nn.utils.prune makes, for this network and for the full MIR-L.

    OMP_NUM_THREADS=1 python benchmarks/mask_overhead.py [--batch 8 --patch 64 --reps 12] [--no-compile]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import Sitting, provenance

from lotteryir.models import build_model
from lotteryir.pruning import IterativeMagnitudePruner, PruningWarning

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"eager": 1.02, "compiled": 1.05}


def pruned_copy(
    model: torch.nn.Module, levels: int = 10, rate: float = 0.2
) -> tuple[torch.nn.Module, IterativeMagnitudePruner]:
    """A copy of ``model`` pruned ``levels`` times at ``rate`` by the public pruner (no training)."""
    pruned = copy.deepcopy(model)
    pruner = IterativeMagnitudePruner(pruned, rate=rate)
    with warnings.catch_warnings():  # pruning an untrained network empties some layers: expected here
        warnings.simplefilter("ignore", PruningWarning)
        for _ in range(levels):
            pruner.prune()
    return pruned, pruner


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], tuple[float, float]]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)

    def step() -> tuple[float, float]:
        """Wall-clock and CPU seconds of one training step."""
        w0, c0 = time.perf_counter(), time.process_time()
        F.l1_loss(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - w0, time.process_time() - c0

    return step


def compare(steps: dict[str, Callable[[], tuple[float, float]]], reps: int, warmup: int) -> dict:
    """Interleaved timings of the 'dense' and 'masked' steps: medians and pair ratios."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[tuple[float, float]]] = {"dense": [], "masked": []}
    for rep in range(reps):
        for name in ("dense", "masked") if rep % 2 == 0 else ("masked", "dense"):
            times[name].append(steps[name]())
    out: dict = {}
    for i, clock in enumerate(("wall", "cpu")):
        med = {k: statistics.median(t[i] for t in v) for k, v in times.items()}
        pairs = [m[i] / d[i] for m, d in zip(times["masked"], times["dense"])]
        out[clock] = {
            "median_s": med,
            "ratio_of_medians": med["masked"] / med["dense"],
            "median_pair_ratio": statistics.median(pairs),
        }
    out["times"] = times
    return out


def mask_bytes(model: torch.nn.Module) -> dict[str, int]:
    """State-dict bytes: dense, with bool masks, and with the float32 masks torch would make."""
    sd = model.state_dict()
    masks = [t for k, t in sd.items() if k.endswith("_mask")]
    total = sum(t.numel() * t.element_size() for t in sd.values())
    bool_masks = sum(t.numel() * t.element_size() for t in masks)
    float_masks = sum(t.numel() * 4 for t in masks)
    return {
        "dense_state_dict": total - bool_masks,
        "masks_bool": bool_masks,
        "masks_float32": float_masks,
        "masked_state_dict_bool": total,
        "masked_state_dict_float32": total - bool_masks + float_masks,
    }


def full_mirl_bytes() -> dict[str, int]:
    """The same figures for the full MIR-L, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = build_model("mirl", "full")
        IterativeMagnitudePruner(model)
    return mask_bytes(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="MIR-L size: tiny, small or full")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=12, help="timed steps per network and mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads (1 keeps timings stable on a shared machine)"
    )
    parser.add_argument(
        "--no-compile", action="store_true", help="skip the torch.compile columns (compiling takes minutes on CPU)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mask_overhead.json")
    args = parser.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dense = build_model("mirl", args.size).train()
    masked, pruner = pruned_copy(dense)
    g = torch.Generator().manual_seed(1)
    y = torch.rand(args.batch, 3, args.patch, args.patch, generator=g)
    x = (y + 0.1 * torch.randn(y.shape, generator=g)).clamp(0, 1)
    print(
        f"MIR-L {args.size}, CPU, batch {args.batch}x{args.patch}x{args.patch}, {args.threads} thread(s), "
        f"density {pruner.density:.4f}, torch {torch.__version__}"
    )

    result: dict = {
        "model": f"mirl/{args.size}",
        "density": pruner.density,
        "batch": args.batch,
        "patch": args.patch,
        "threads": args.threads,
        "reps": args.reps,
        "targets": TARGETS,
        "modes": {},
    }
    noise = compare(
        {"dense": make_step(dense, x, y), "masked": make_step(copy.deepcopy(dense), x, y)}, args.reps, args.warmup
    )
    result["noise_floor_eager"] = {k: noise[k] for k in ("wall", "cpu")}
    modes = {"eager": (dense, masked)}
    if not args.no_compile:
        modes["compiled"] = (torch.compile(dense), torch.compile(masked))
    for mode, (d, m) in modes.items():
        if mode == "compiled":
            from torch._dynamo.utils import counters

            counters.clear()
            t0 = time.perf_counter()
            make_step(d, x, y)()
            graphs_dense = counters["stats"]["unique_graphs"]
            make_step(m, x, y)()
            graphs_masked = counters["stats"]["unique_graphs"] - graphs_dense
            compile_s = time.perf_counter() - t0
        r = compare({"dense": make_step(d, x, y), "masked": make_step(m, x, y)}, args.reps, args.warmup)
        if mode == "compiled":
            before = counters["stats"]["unique_graphs"]
            pruner.prune()  # a new round: masks change in place
            make_step(m, x, y)()
            r["graphs"] = {
                "dense": graphs_dense,
                "masked": graphs_masked,
                "new_after_pruning": counters["stats"]["unique_graphs"] - before,
            }
            r["compile_seconds_both"] = compile_s
        r["passes"] = r["cpu"]["median_pair_ratio"] <= TARGETS[mode]
        result["modes"][mode] = r

    result["bytes"] = {"this_model": mask_bytes(masked), "mirl_full": full_mirl_bytes()}

    print(
        f"\n{'mode':9} {'dense ms':>9} {'masked ms':>10} | {'ratio (cpu)':>11} {'pair ratio':>10} {'wall ratio':>10} "
        "| target"
    )
    for mode, r in result["modes"].items():
        c = r["cpu"]
        print(
            f"{mode:9} {1000 * c['median_s']['dense']:>9.1f} {1000 * c['median_s']['masked']:>10.1f} | "
            f"{c['ratio_of_medians']:>11.3f} {c['median_pair_ratio']:>10.3f} {r['wall']['ratio_of_medians']:>10.3f} | "
            f"<= {TARGETS[mode]} {'pass' if r['passes'] else 'FAIL'}"
        )
    nf = result["noise_floor_eager"]["cpu"]
    print(
        f"{'noise':9} {1000 * nf['median_s']['dense']:>9.1f} {1000 * nf['median_s']['masked']:>10.1f} | "
        f"{nf['ratio_of_medians']:>11.3f} {nf['median_pair_ratio']:>10.3f} "
        f"{result['noise_floor_eager']['wall']['ratio_of_medians']:>10.3f} | dense vs an identical copy"
    )
    if "compiled" in result["modes"]:
        gr = result["modes"]["compiled"]["graphs"]
        print(
            f"torch.compile graphs: dense {gr['dense']}, masked {gr['masked']}, new after a pruning round "
            ""
            f"{gr['new_after_pruning']} (compiling both took "
            f"{result['modes']['compiled']['compile_seconds_both']:.0f} s)"
        )
    for label, b in result["bytes"].items():
        print(
            f"{label}: masks {b['masks_bool'] / 1e6:.1f} MB as bool ({b['masks_float32'] / 1e6:.1f} MB as float32); "
            f"state dict {b['masked_state_dict_bool'] / 1e6:.1f} MB masked vs {b['dense_state_dict'] / 1e6:.1f} MB "
            "dense "
            f"({b['masked_state_dict_float32'] / 1e6:.1f} MB with float32 masks)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result["provenance"] = provenance(sitting, threads=args.threads)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
