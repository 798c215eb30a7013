"""ONNX export of every registered network, dense and pruned: onnxruntime vs torch, and file sizes.

For each (model, size) of the registry, the network dense and after 10 layerwise rounds of
20% magnitude pruning (density 0.107 in every layer; weights are the initialization plus a
same-scale perturbation, as in export_size.py) is exported with ``lotteryir.deploy.to_onnx``
and run by onnxruntime on three image sizes against torch (target: max |diff| <= 1e-4).
Sizes reported: dense fp32 safetensors, compact ticket, ONNX stored densely, ONNX with
sparse initializers (int64 indices, as the ONNX checker wants) and with the narrowest
indices onnxruntime loads (the default). Target: sparse ONNX <= 0.35x dense ONNX at 0.107.

    python benchmarks/onnx_export.py [--models mirl,restormer --sizes all]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from harness import Sitting, provenance
from safetensors.torch import save_file

from lotteryir.checkpoints import save_ticket
from lotteryir.deploy import compare_onnx, to_onnx
from lotteryir.models import build_model, sizes
from lotteryir.pruning import IterativeMagnitudePruner, find_prunable, remove_masks

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ((64, 64), (37, 53), (120, 88))


def network(name: str, size: str, rounds: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, size)
    with torch.no_grad():  # "trained" weights: init plus a same-scale perturbation
        for p in model.parameters():
            p.add_(torch.randn_like(p) * (p.std() if p.numel() > 1 else 0.01))
    if rounds:
        pruner = IterativeMagnitudePruner(model, rate=0.2, scope="layerwise")
        for _ in range(rounds):
            pruner.prune()
        remove_masks(find_prunable(model))
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mirl,restormer")
    ap.add_argument("--sizes", default="all", help="comma-separated sizes, or all registered")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "onnx_export.json")
    args = ap.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    torch.set_num_threads(min(2, torch.get_num_threads()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for name in args.models.split(","):
            for size in sizes(name) if args.sizes == "all" else args.sizes.split(","):
                for rounds in (0, args.rounds):
                    model = network(name, size, rounds)
                    t0 = time.perf_counter()
                    done = to_onnx(model, tmpdir / "m.onnx")
                    seconds = time.perf_counter() - t0
                    diffs = compare_onnx(model, done.path, IMAGES)
                    strict = to_onnx(model, tmpdir / "strict.onnx", indices="int64")
                    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmpdir / "d.safetensors"))
                    save_ticket(model, tmpdir / "t.safetensors", name=name, size=size)
                    rows.append(
                        {
                            "model": name,
                            "size": size,
                            "density": 0.8**rounds,
                            "onnx_nonzero_share": done.nonzero / done.weights,
                            "max_abs_diff": max(diffs.values()),
                            "diffs": diffs,
                            "export_s": seconds,
                            "safetensors_bytes": (tmpdir / "d.safetensors").stat().st_size,
                            "ticket_bytes": (tmpdir / "t.safetensors").stat().st_size,
                            "onnx_dense_bytes": done.dense_bytes,
                            "onnx_int64_bytes": strict.bytes,
                            "onnx_bytes": done.bytes,
                            "onnx_vs_dense_onnx": done.bytes / done.dense_bytes,
                        }
                    )
                    r = rows[-1]
                    print(
                        f"{name}/{size} density {r['density']:.3f}: max |diff| {r['max_abs_diff']:.1e}, "
                        f"onnx {r['onnx_bytes'] / 1e6:.2f} MB ({r['onnx_vs_dense_onnx']:.3f}x dense onnx), "
                        f"export {seconds:.1f} s",
                        flush=True,
                    )
    print(
        f"\n{'model':>24} {'density':>8} {'max|diff|':>9} {'fp32 MB':>8} {'ticket MB':>9} {'ONNX dense':>10} "
        f"{'ONNX int64':>10} {'ONNX':>8} {'ONNX/dense':>10}"
    )
    for r in rows:
        print(
            f"{r['model'] + '/' + r['size']:>24} {r['density']:>8.3f} {r['max_abs_diff']:>9.1e} "
            f"{r['safetensors_bytes'] / 1e6:>8.2f} {r['ticket_bytes'] / 1e6:>9.2f} "
            f"{r['onnx_dense_bytes'] / 1e6:>10.2f} "
            f"{r['onnx_int64_bytes'] / 1e6:>10.2f} {r['onnx_bytes'] / 1e6:>8.2f} {r['onnx_vs_dense_onnx']:>10.3f}"
        )
    worst = max(r["max_abs_diff"] for r in rows)
    print(f"worst max |diff| {worst:.1e} over {len(rows)} exports x {len(IMAGES)} image sizes (target 1e-4)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"benchmark": "onnx_export", "images": IMAGES, "rows": rows, "provenance": provenance(sitting)}, indent=2
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
