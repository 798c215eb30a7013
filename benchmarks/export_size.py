"""Size of the compact ticket of the full MIR-L against its entropy bound and the dense file.

For densities 0.8, 0.33, 0.107 and 0.035 (1, 5, 10 and 15 global rounds of 20%)
on the full MIR-L (PromptIR architecture, 35.6M parameters), write the compact
ticket and report: file size, the entropy bound (sum over pruned tensors of
n*H(d)/8 + nnz*4 bytes, plus the other tensors' dense bytes), their ratio
(target <= 1.15), and the dense safetensors file. Weights are the network's
initialization perturbed as if trained; magnitudes decide the masks.

    python benchmarks/export_size.py [--out benchmarks/results/export_size.json]
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

from lotteryir.checkpoints import load_ticket, save_ticket
from lotteryir.models import build_model
from lotteryir.pruning import IterativeMagnitudePruner, export_state_dict
from lotteryir.pruning.ticket import entropy_bound_bytes

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mirl")
    ap.add_argument("--size", default="full")
    ap.add_argument("--rounds", default="1,5,10,15", help="comma-separated numbers of 20%% rounds")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "export_size.json")
    args = ap.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says

    torch.manual_seed(0)
    model = build_model(args.model, args.size)
    with torch.no_grad():  # "trained" weights: init plus a same-scale perturbation
        for p in model.parameters():
            p.add_(torch.randn_like(p) * (p.std() if p.numel() > 1 else 0.01))
    pruner = IterativeMagnitudePruner(model, rate=0.2)
    wanted = sorted(int(r) for r in args.rounds.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dense_path = Path(tmp) / "dense.safetensors"
        save_file({k: v.contiguous() for k, v in export_state_dict(model).items()}, str(dense_path))
        dense = dense_path.stat().st_size
        for level in range(1, wanted[-1] + 1):
            pruner.prune()
            if level not in wanted:
                continue
            path = Path(tmp) / f"ticket{level}.safetensors"
            t0 = time.perf_counter()
            mask = save_ticket(model, path, name=args.model, size=args.size)
            t_save = time.perf_counter() - t0
            t0 = time.perf_counter()
            loaded = load_ticket(path)
            t_load = time.perf_counter() - t0
            exported = export_state_dict(model)
            exact = all(torch.equal(v, exported[k]) for k, v in loaded.model.state_dict().items())
            bound = entropy_bound_bytes(exported, mask)
            size = path.stat().st_size
            rows.append(
                {
                    "rounds": level,
                    "density": mask.density,
                    "file_bytes": size,
                    "bound_bytes": bound,
                    "ratio": size / bound,
                    "dense_bytes": dense,
                    "vs_dense": size / dense,
                    "save_s": t_save,
                    "load_s": t_load,
                    "exact": exact,
                }
            )
    print(f"{args.model}/{args.size}: compact ticket vs entropy bound (values fp32)")
    print(
        f"{'rounds':>6} {'density':>8} {'file MB':>9} {'bound MB':>9} {'ratio':>6} {'dense MB':>9} {'of dense':>9} "
        f"{'save s':>7} {'load s':>7} {'exact':>6}"
    )
    for r in rows:
        print(
            f"{r['rounds']:>6} {r['density']:>8.4f} {r['file_bytes'] / 1e6:>9.2f} {r['bound_bytes'] / 1e6:>9.2f} "
            f"{r['ratio']:>6.3f} {r['dense_bytes'] / 1e6:>9.2f} {r['vs_dense']:>9.3f} {r['save_s']:>7.2f} "
            f"{r['load_s']:>7.2f} {str(r['exact']):>6}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "export_size",
                "model": args.model,
                "size": args.size,
                "rows": rows,
                "provenance": provenance(sitting),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
