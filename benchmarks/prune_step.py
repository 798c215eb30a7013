"""Time one global magnitude-pruning round on the full MIR-L parameter set.

Three ways, side by side, on the same 33,181,720 conv and linear weights (a
stand-in network with the exact tensor shapes of tests/reference/mirl_full.json):

  ours   lotteryir: exact radix-select global magnitude, masks updated in place,
         survivors rewound to their initial values (written into ``weight_orig``)
  torch  torch.nn.utils.prune.global_unstructured(L1Unstructured), then the same rewind
  numpy  the MIR-L reference algorithm written plainly: concatenate the surviving
         weights, np.percentile of their magnitudes at the rate, np.where per
         tensor, copy the initial values back

Prints a table (median seconds over repetitions, peak extra resident memory,
ratios against ours) and writes JSON.

    python benchmarks/prune_step.py [--reps 5] [--rate 0.2] [--out benchmarks/results/prune_step.json]
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from lotteryir.pruning import Mask, find_prunable, global_magnitude, write_weights
from lotteryir.pruning.bridge import attach_masks

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "reference" / "mirl_full.json"


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


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(fn, reps: int) -> tuple[float, float, object]:
    """Median seconds and peak extra RSS (MiB) of ``fn(rep)`` over ``reps`` runs."""
    times, peaks, result = [], [], None
    for rep in range(reps):
        base = _rss_kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark (Linux)
        except OSError:
            pass
        t0 = time.perf_counter()
        result = fn(rep)
        times.append(time.perf_counter() - t0)
        peaks.append(max(0, _rss_kib("VmHWM") - base) / 1024)
    return statistics.median(times), statistics.median(peaks), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--torch-reps", type=int, default=3, help="repetitions for the slow torch baseline")
    ap.add_argument("--rate", type=float, default=0.2)
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prune_step.json")
    args = ap.parse_args()

    torch.manual_seed(0)
    net = stand_in(args.spec)
    params = find_prunable(net)
    init = {p.name: p.module.weight.detach().clone() for p in params}
    # "Trained" weights: the init plus a perturbation, so magnitudes differ from init.
    trained = {n: w + 0.5 * torch.randn_like(w) * w.std() for n, w in init.items()}
    n_weights = sum(w.numel() for w in init.values())
    print(f"stand-in: {len(init)} tensors, {n_weights:,} prunable weights; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    # ---- ours: mask from trained weights, attach in place, rewind survivors to init
    attach_masks(net, params)
    ones = Mask.ones_like(init)

    def ours(_rep: int) -> Mask:
        mask = global_magnitude(trained, ones, args.rate)
        attach_masks(net, params, mask)
        write_weights(params, init)
        return mask

    t_ours, m_ours, mask_ours = measure(ours, args.reps)

    # ---- (a) torch.nn.utils.prune.global_unstructured on fresh modules each repetition
    def torch_way(_rep: int) -> dict[str, torch.Tensor]:
        mods = nn.ModuleDict()
        for n, w in trained.items():
            m = nn.Module()
            m.weight = nn.Parameter(w.clone())
            mods[n.replace(".", "__")] = m
        pairs = [(m, "weight") for m in mods.values()]
        t0 = time.perf_counter()
        prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=args.rate)
        with torch.no_grad():
            for (m, _), n in zip(pairs, trained):
                m.weight_orig.copy_(init[n])
        torch_way.elapsed.append(time.perf_counter() - t0)
        return {n: m.weight_mask.bool() for (m, _), n in zip(pairs, trained)}

    torch_way.elapsed = []  # type: ignore[attr-defined]
    _, m_torch, mask_torch = measure(torch_way, args.torch_reps)
    t_torch = statistics.median(torch_way.elapsed)  # setup (building modules) excluded

    # ---- (b) the reference algorithm in numpy
    np_trained = {n: w.numpy() for n, w in trained.items()}
    np_init = {n: w.numpy() for n, w in init.items()}

    def numpy_way(_rep: int) -> dict[str, np.ndarray]:
        # As LTH reference code does it: survivors are the nonzero weights, one
        # percentile over their magnitudes, np.where per tensor, then rewind.
        masks = {n: np.ones(w.shape, dtype=np.float32) for n, w in np_trained.items()}
        alive = np.concatenate([w[np.nonzero(w)] for w in np_trained.values()])
        threshold = np.percentile(np.abs(alive), args.rate * 100)
        out = {}
        for n, w in np_trained.items():
            out[n] = np.where(np.abs(w) < threshold, 0, masks[n])
            np_init[n] * out[n]  # survivors back to their initial values (the rewind)
        return {n: m.astype(bool) for n, m in out.items()}

    t_np, m_np, mask_np = measure(numpy_way, args.reps)

    equal_torch = all(torch.equal(mask_ours[n], mask_torch[n]) for n in init)
    differ_np = sum(int((mask_ours[n].numpy() != mask_np[n]).sum()) for n in init)
    rows = [
        ("lotteryir", t_ours, m_ours, 1.0),
        ("torch global_unstructured", t_torch, m_torch, t_torch / t_ours),
        ("numpy reference (MIR-L)", t_np, m_np, t_np / t_ours),
    ]
    print(f"\none global round at rate {args.rate}: median of {args.reps} (torch: {args.torch_reps}) repetitions")
    print(f"{'method':<28} {'seconds':>9} {'peak MiB':>9} {'x slower than ours':>19}")
    for name, t, m, ratio in rows:
        print(f"{name:<28} {t:>9.3f} {m:>9.0f} {ratio:>19.1f}")
    print(f"\nmasks equal to torch's: {equal_torch}; entries differing from numpy's percentile mask: {differ_np:,}"
          f" (np.percentile interpolates; we remove exactly round(rate * n))")
    print(f"density after the round: {mask_ours.density:.6f} (expected {1 - args.rate}); "
          f"remaining {mask_ours.num_remaining:,} of {mask_ours.num_total:,}")

    result = {
        "benchmark": "prune_step",
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "threads": torch.get_num_threads()},
        "torch": torch.__version__,
        "weights": n_weights,
        "tensors": len(init),
        "rate": args.rate,
        "reps": args.reps,
        "seconds": {"ours": t_ours, "torch": t_torch, "numpy": t_np},
        "peak_extra_rss_mib": {"ours": m_ours, "torch": m_torch, "numpy": m_np},
        "ratio_vs_ours": {"torch": t_torch / t_ours, "numpy": t_np / t_ours},
        "masks_equal_torch": equal_torch,
        "entries_differing_from_numpy": differ_np,
        "density": mask_ours.density,
    }
    assert math.isclose(mask_ours.density, 1 - args.rate, abs_tol=1e-6)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
