"""Time one pruning round through the public API on the full MIR-L parameter set.

What a user runs: an ``IterativeMagnitudePruner`` at level 1 (all-ones masks)
and at level 4 (masks already at density 0.512), ``pruner.prune()`` then
``pruner.rewind()``, against the same work done with torch:
``torch.nn.utils.prune.global_unstructured(L1Unstructured)`` on the same
modules, then the same rewind (the initial values copied into ``weight_orig``).
Both sides prune the same 33,181,720 conv and linear weights (a stand-in network
with the exact tensor shapes of tests/reference/mirl_full.json) after the same
"training" (a seeded perturbation before every level), and their masks are
compared. A numpy version of the MIR-L reference algorithm is timed at level 1.

Each repetition builds fresh networks (untimed) and walks both pruners from
level 0 to 4; levels 1 and 4 are timed. Prints wall-clock and CPU-time medians
(CPU time is what survives other jobs on the machine) and the ratios, and writes
JSON. Target: torch / ours >= 10 at both levels.

    OMP_NUM_THREADS=1 python benchmarks/prune_step.py [--reps 5] [--out benchmarks/results/prune_step.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from harness import Sitting, provenance
from torch import nn
from torch.nn.utils import prune

from lotteryir.pruning import IterativeMagnitudePruner, Mask

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "reference" / "mirl_full.json"
TIMED = (1, 4)
TARGET = 10.0


def stand_in(spec_path: Path) -> nn.Module:
    """Conv2d/Linear modules with exactly the MIR-L conv and linear weight shapes."""
    spec = json.loads(spec_path.read_text())["state_dict"]
    net = nn.ModuleDict()
    for name, shape in spec:
        if not name.endswith("weight") or len(shape) not in (2, 4):
            continue
        key = name[: -len(".weight")].replace(".", "__")
        if len(shape) == 4:
            net[key] = nn.Conv2d(shape[1], shape[0], tuple(shape[2:]), bias=False)
        else:
            net[key] = nn.Linear(shape[1], shape[0], bias=False)
    return net


def weights_of(net: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(trainable tensor, mask or None) of every module: ``weight_orig``/``weight_mask`` once pruned."""
    return [(m.weight_orig, m.weight_mask) if hasattr(m, "weight_mask") else (m.weight, None) for m in net.values()]


@torch.no_grad()
def train(net: nn.Module, level: int) -> None:
    """Stand-in for a round of training: the same seeded perturbation of the surviving weights on both sides.

    As in real training, pruned entries do not move (their gradient is zero).
    """
    g = torch.Generator().manual_seed(1000 + level)
    for w, mask in weights_of(net):
        effective = w if mask is None else w * mask
        step = torch.randn(w.shape, generator=g).mul_(0.5 * float(effective.std()))
        w.add_(step if mask is None else step * mask)


class Clock:
    """Wall-clock and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0


def ours(base: nn.Module, rate: float, combined: bool) -> tuple[dict[int, Clock], Mask]:
    """The public path: a pruner; ``prune()`` then ``rewind()``, or ``prune(rewind=True)`` (what run_round calls)."""
    import copy

    net = copy.deepcopy(base)
    pruner = IterativeMagnitudePruner(net, rate=rate, rewind="init")
    clocks = {}
    for level in range(1, max(TIMED) + 1):
        train(net, level)
        with Clock() as c:
            if combined:
                pruner.prune(rewind=True)
            else:
                pruner.prune()
                pruner.rewind()
        clocks[level] = c
    return clocks, pruner.mask


def torch_way(base: nn.Module, rate: float) -> tuple[dict[int, Clock], Mask]:
    """global_unstructured on the same modules, then the same rewind."""
    import copy

    net = copy.deepcopy(base)
    init = [w.detach().clone() for w, _ in weights_of(net)]
    pairs = [(m, "weight") for m in net.values()]
    total = sum(w.numel() for w in init)
    clocks = {}
    for level in range(1, max(TIMED) + 1):
        train(net, level)
        with torch.no_grad():  # what the last forward of training leaves: global_unstructured ranks module.weight
            for m, _ in pairs:
                if hasattr(m, "weight_mask"):
                    m.weight = m.weight_orig * m.weight_mask
        # The pruner's exact schedule, round(total * (1 - rate)^level) survivors, as a count for torch.
        n_prune = round(total * (1 - rate) ** (level - 1)) - round(total * (1 - rate) ** level)
        with Clock() as c:
            prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=n_prune)
            with torch.no_grad():
                for (m, _), w0 in zip(pairs, init):
                    m.weight_orig.copy_(w0)
        clocks[level] = c
    names = [f"{k}.weight" for k in net.keys()]  # the pruner's names for the same modules
    return clocks, Mask({n: m.weight_mask.bool() for n, (m, _) in zip(names, pairs)})


def numpy_way(base: nn.Module, rate: float) -> Clock:
    """The MIR-L reference algorithm at level 1: one percentile over the magnitudes, np.where, rewind."""
    trained = {k: m.weight.detach().numpy().copy() for k, m in base.items()}
    g = torch.Generator().manual_seed(1001)
    for _k, w in trained.items():
        w += (torch.randn(w.shape, generator=g) * (0.5 * float(np.std(w)))).numpy()
    init = {k: m.weight.detach().numpy() for k, m in base.items()}
    with Clock() as c:
        masks = {n: np.ones(w.shape, dtype=np.float32) for n, w in trained.items()}
        alive = np.concatenate([w[np.nonzero(w)] for w in trained.values()])
        threshold = np.percentile(np.abs(alive), rate * 100)
        for n, w in trained.items():
            masks[n] = np.where(np.abs(w) < threshold, 0, masks[n])
            init[n] * masks[n]  # survivors back to their initial values
    return c


SIDES = {
    "prune()+rewind()": lambda base, rate: ours(base, rate, combined=False),
    "prune(rewind=True)": lambda base, rate: ours(base, rate, combined=True),
    "torch": torch_way,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prune_step.json")
    args = ap.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says

    torch.manual_seed(0)
    base = stand_in(args.spec)
    n_weights = sum(m.weight.numel() for m in base.values())
    print(
        f"stand-in: {len(base)} tensors, {n_weights:,} prunable weights; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )

    clocks: dict[str, dict[int, list[Clock]]] = {side: {lv: [] for lv in TIMED} for side in SIDES}
    numpy_clocks, equal, density = [], True, 0.0
    for rep in range(args.reps):
        # Rotate the order, so drift in the machine's load hits every side alike.
        order = list(SIDES)[rep % len(SIDES) :] + list(SIDES)[: rep % len(SIDES)]
        masks = {}
        for side in order:
            run, masks[side] = SIDES[side](base, args.rate)
            for lv in TIMED:
                clocks[side][lv].append(run[lv])
        equal &= all(m == masks["torch"] for m in masks.values())
        density = masks["torch"].density
        numpy_clocks.append(numpy_way(base, args.rate))

    def med(cs: list[Clock], what: str) -> float:
        return statistics.median(getattr(c, what) for c in cs)

    levels: dict[int, dict] = {}
    for lv in TIMED:
        t = clocks["torch"][lv]
        entry: dict = {
            "density_before": (1 - args.rate) ** (lv - 1),
            "torch": {"wall_s": med(t, "wall"), "cpu_s": med(t, "cpu")},
        }
        for side in ("prune()+rewind()", "prune(rewind=True)"):
            o = clocks[side][lv]
            entry[side] = {
                "wall_s": med(o, "wall"),
                "cpu_s": med(o, "cpu"),
                "torch_over_ours_wall": med(t, "wall") / med(o, "wall"),
                "torch_over_ours_cpu": med(t, "cpu") / med(o, "cpu"),
                "median_pair_ratio_cpu": statistics.median(b.cpu / a.cpu for a, b in zip(o, t)),
            }
            entry[side]["passes"] = entry[side]["torch_over_ours_cpu"] >= TARGET
        levels[lv] = entry
    np_wall, np_cpu = med(numpy_clocks, "wall"), med(numpy_clocks, "cpu")

    print(
        f"\none global round at rate {args.rate}, medians of {args.reps} repetitions "
        f"(cpu: process time, what survives other jobs on the machine)"
    )
    print(
        f"{'level':>5} {'density':>7}  {'public path':<20} {'wall s':>7} {'cpu s':>7} | {'torch wall s':>12} "
        f"{'cpu s':>7} | {'torch/ours wall':>15} {'cpu':>6}  target >= {TARGET:g}"
    )
    for lv, e in levels.items():
        for side in ("prune()+rewind()", "prune(rewind=True)"):
            o = e[side]
            print(
                f"{lv:>5} {e['density_before']:>7.3f}  {side:<20} {o['wall_s']:>7.3f} {o['cpu_s']:>7.3f} | "
                f"{e['torch']['wall_s']:>12.3f} {e['torch']['cpu_s']:>7.3f} | {o['torch_over_ours_wall']:>15.1f} "
                f"{o['torch_over_ours_cpu']:>6.1f}  {'pass' if o['passes'] else 'FAIL'}"
            )
    print(
        f"numpy reference (MIR-L) at level 1: {np_wall:.3f} s wall, {np_cpu:.3f} s cpu "
        f"({np_cpu / levels[1]['prune()+rewind()']['cpu_s']:.1f}x prune()+rewind())"
    )
    print(
        f"masks identical to torch's at every timed level of every repetition: {equal}; "
        f"density after level {max(TIMED)}: {density:.6f}"
    )

    result = {
        "benchmark": "prune_step",
        "path": "public: IterativeMagnitudePruner.prune() + rewind(), and prune(rewind=True)",
        "baseline": "torch.nn.utils.prune.global_unstructured(L1Unstructured) + the same rewind copy",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "threads": torch.get_num_threads(),
        },
        "torch": torch.__version__,
        "weights": n_weights,
        "tensors": len(base),
        "rate": args.rate,
        "reps": args.reps,
        "target_ratio": TARGET,
        "levels": levels,
        "numpy_level1": {"wall_s": np_wall, "cpu_s": np_cpu},
        "masks_equal_torch": equal,
        "density_after_level4": density,
        "provenance": provenance(sitting),
    }
    if not equal:
        raise SystemExit("the public path's masks differ from torch's")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
