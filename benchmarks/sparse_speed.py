"""Sparse CPU inference (lotteryir.deploy.sparsify) against the dense network, full MIR-L.

What a user runs: ``restore_image(model, image)`` on one image, with

- ``eager``: the network as loaded (pruned weights are zeros), plain PyTorch: the baseline;
- ``dense-blocked``: ``sparsify(..., max_density=1, layout="strided")``, the sparse path's own
  formulation (1x1 convs as W @ X over pixel blocks, 1x1+depthwise pairs in row bands) with
  dense weights: the fastest dense formulation found, to show what sparsity alone gains;
- ``sparse d``: ``sparsify(ticket)`` at each density.

The masks are magnitude masks of the network after a short training (``--train-steps``
AdamW steps on the built-in sample data), pruned in rounds of 20% as IMP does: 5, 10 and
15 rounds give densities 0.328, 0.107 and 0.035. ``--scope layerwise`` (the default) keeps
every layer at that density. Global magnitude on weights this close to their initialization
empties whole layers (38 of MIR-L's tensors, including every `ffn.project_out` of the
latent level, at 0.107), which a trained ticket does not do and which would flatter the
sparse path; ``--scope global`` measures it anyway.

Variants are timed in turn within each repetition (the order rotates), so load from other
jobs hits all alike; the table gives medians of ``--reps`` and the median of the per-
repetition ratios. A second table splits each variant's time by layer type (forward hooks).

    python benchmarks/sparse_speed.py [--threads 2 --sizes 256,512 --reps 5 --train-steps 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import Sitting, provenance
from torch import nn

from lotteryir.data import get_recipe
from lotteryir.deploy import BlockedConv1x1, PointDepth, sparsify
from lotteryir.engine import restore_image
from lotteryir.models import build_model
from lotteryir.pruning import IterativeMagnitudePruner, export_state_dict

ROOT = Path(__file__).resolve().parents[1]


def short_training(model: nn.Module, steps: int, seed: int = 0) -> None:
    """``steps`` AdamW steps (lr 2e-4, batch 2, 64x64 patches) on the sample recipe's training patches."""
    if steps <= 0:
        return
    data = get_recipe("sample").train_dataset(patch_size=64, seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    model.train()
    for step in range(steps):
        batch = [data[2 * step + i] for i in range(2)]
        x = torch.stack([b["input"] for b in batch])
        y = torch.stack([b["target"] for b in batch])
        opt.zero_grad()
        F.l1_loss(model(x), y).backward()
        opt.step()
    model.eval()


def tickets(model: nn.Module, rounds: list[int], scope: str) -> dict[float, dict[str, torch.Tensor]]:
    """Plain state dicts (pruned weights as zeros) after each number of 20% rounds, keyed by density."""
    pruner = IterativeMagnitudePruner(model, rate=0.2, scope=scope)
    out = {}
    for r in range(1, max(rounds) + 1):
        pruner.prune()
        if r in rounds:
            out[pruner.density] = {k: v.clone() for k, v in export_state_dict(model).items()}
    return out


def layer_kind(module: nn.Module) -> str | None:
    if isinstance(module, PointDepth):
        return "1x1+depthwise fused"
    if isinstance(module, BlockedConv1x1):
        return "1x1 conv"
    if isinstance(module, nn.Conv2d):
        if module.kernel_size == (1, 1):
            return "1x1 conv"
        return "depthwise conv" if module.groups > 1 else "full conv"
    return None


class LayerTimer:
    """Wall time spent inside each kind of layer, through forward pre/post hooks."""

    def __init__(self, model: nn.Module) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.handles = []
        for module in model.modules():
            kind = layer_kind(module)
            if kind is not None:
                self.handles.append(module.register_forward_pre_hook(self._start))
                self.handles.append(module.register_forward_hook(lambda m, i, o, k=kind: self._stop(m, k)))

    def _start(self, module, inputs) -> None:
        module._t0 = time.perf_counter()

    def _stop(self, module, kind: str) -> None:
        self.seconds[kind] += time.perf_counter() - module._t0

    def take(self) -> dict[str, float]:
        out, self.seconds = dict(self.seconds), defaultdict(float)
        return out


def photo(side: int) -> torch.Tensor:
    """A real photograph (scikit-image's astronaut, 512x512), centre-cropped to ``side``."""
    from skimage import data

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    top = (img.shape[1] - side) // 2
    return img[:, top : top + side, top : top + side].contiguous()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mirl")
    ap.add_argument("--size", default="full")
    ap.add_argument("--rounds", default="5,10,15", help="20%% rounds per ticket (0.328, 0.107, 0.035)")
    ap.add_argument("--sizes", default="256,512", help="image sides")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--scope", default="layerwise", choices=["layerwise", "global"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sparse_speed.json")
    args = ap.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    t0 = time.perf_counter()
    model = build_model(args.model, args.size)
    short_training(model, args.train_steps)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    states = tickets(model, [int(r) for r in args.rounds.split(",")], args.scope)
    prep = time.perf_counter() - t0

    def plain(state: dict[str, torch.Tensor]) -> nn.Module:
        net = build_model(args.model, args.size)
        net.load_state_dict(state)
        return net.eval()

    eager = plain(trained)
    variants: dict[str, nn.Module] = {
        "eager": eager,
        "dense-blocked": sparsify(eager, max_density=1.0, layout="strided"),
    }
    for density, state in states.items():
        variants[f"sparse {density:.3f}"] = sparsify(plain(state))
    names = list(variants)
    timers = {name: LayerTimer(net) for name, net in variants.items()}

    rows, layer_rows = [], []
    for side in [int(s) for s in args.sizes.split(",")]:
        image = photo(side)
        # Exactness: each sparse ticket against its own dense network, on this image.
        errors = {}
        with torch.no_grad():
            for density, state in states.items():
                ref = restore_image(plain(state), image)
                errors[f"sparse {density:.3f}"] = float(
                    (restore_image(variants[f"sparse {density:.3f}"], image) - ref).abs().max()
                )
            errors["dense-blocked"] = float(
                (restore_image(variants["dense-blocked"], image) - restore_image(eager, image)).abs().max()
            )
        times: dict[str, list[float]] = {n: [] for n in names}
        layers: dict[str, list[dict[str, float]]] = {n: [] for n in names}
        for rep in range(args.reps):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                timers[name].take()
                start = time.perf_counter()
                restore_image(variants[name], image)
                times[name].append(time.perf_counter() - start)
                layers[name].append(timers[name].take())
        base = times["eager"]
        best_dense = [min(a, b) for a, b in zip(times["eager"], times["dense-blocked"])]
        for name in names:
            t = times[name]
            rows.append(
                {
                    "image": side,
                    "variant": name,
                    "median_s": statistics.median(t),
                    "times_s": t,
                    "speedup_vs_eager": statistics.median(b / x for b, x in zip(base, t)),
                    "speedup_vs_fastest_dense": statistics.median(b / x for b, x in zip(best_dense, t)),
                    "max_abs_diff": errors.get(name, 0.0),
                }
            )
            kinds = sorted({k for d in layers[name] for k in d})
            split = {k: statistics.median(d.get(k, 0.0) for d in layers[name]) for k in kinds}
            split["rest"] = statistics.median(x - sum(d.values()) for x, d in zip(t, layers[name]))
            layer_rows.append({"image": side, "variant": name, **split})

    print(
        f"{args.model}/{args.size}, {args.threads} threads, {args.reps} reps, masks: {args.scope} magnitude after "
        f"{args.train_steps} training steps (setup {prep:.0f} s); medians"
    )
    print(f"{'image':>6} {'variant':>14} {'seconds':>8} {'vs eager':>9} {'vs fastest dense':>17} {'max |diff|':>11}")
    for r in rows:
        print(
            f"{r['image']:>6} {r['variant']:>14} {r['median_s']:>8.2f} {r['speedup_vs_eager']:>8.2f}x "
            f"{r['speedup_vs_fastest_dense']:>16.2f}x {r['max_abs_diff']:>11.1e}"
        )
    kinds = ["1x1 conv", "depthwise conv", "1x1+depthwise fused", "full conv", "rest"]
    print("\nseconds per layer type (medians; 'rest' = norms, attention, activations, padding, ...)")
    print(f"{'image':>6} {'variant':>14} " + " ".join(f"{k:>19}" for k in kinds))
    for r in layer_rows:
        print(f"{r['image']:>6} {r['variant']:>14} " + " ".join(f"{r.get(k, 0.0):>19.2f}" for k in kinds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "sparse_speed",
                "model": args.model,
                "size": args.size,
                "threads": args.threads,
                "reps": args.reps,
                "scope": args.scope,
                "train_steps": args.train_steps,
                "torch": torch.__version__,
                "rows": rows,
                "layers": layer_rows,
                "provenance": provenance(sitting, threads=args.threads),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
