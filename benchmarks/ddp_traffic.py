"""Bytes DistributedDataParallel broadcasts per training step, with the pruner's masks attached.

Two gloo processes on this machine train MIR-L (default: full size, 32x32 inputs,
batch 1 per rank) as README's "Your own network" says: the pruner first, then
``DistributedDataParallel(model)``. DDP's per-forward buffer broadcast is counted
where it happens (``torch.distributed._broadcast_coalesced``): with the pruner's
ignore list (the documented pattern), and without it, as every user's own DDP loop
sent before (the masks were float32 then: four times the bool bytes shown).

    python benchmarks/ddp_traffic.py [--size full] [--steps 2] [--out benchmarks/results/ddp_traffic.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
import torch.multiprocessing as mp
from harness import Sitting, provenance

ROOT = Path(__file__).resolve().parents[1]


def _worker(rank: int, world: int, init: str, size: str, steps: int, result_path: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from lotteryir.models import build_model
    from lotteryir.pruning import IterativeMagnitudePruner

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    sent: list[torch.Tensor] = []
    real = dist._broadcast_coalesced

    def counting(group, tensors, buffer_size, src=0):
        sent.extend(tensors)
        return real(group, tensors, buffer_size, src)

    dist._broadcast_coalesced = counting
    try:
        out = {}
        for variant in ("pruner then DDP (documented)", "without the ignore list (before)"):
            torch.manual_seed(0)
            model = build_model("mirl", size)
            pruner = IterativeMagnitudePruner(model, rate=0.2)
            pruner.prune()
            if variant.startswith("without"):
                del model._ddp_params_and_buffers_to_ignore
            ddp = DistributedDataParallel(model, find_unused_parameters=True)  # PromptIR builds unused layers
            x = torch.rand(1, 3, 32, 32)
            sent.clear()
            for _ in range(steps):
                ddp(x).mean().backward()
            masks = {id(b) for n, b in model.named_buffers() if n.endswith("_mask")}
            out[variant] = {
                "bytes_per_step": sum(t.numel() * t.element_size() for t in sent) / steps,
                "mask_bytes_per_step": sum(t.numel() * t.element_size() for t in sent if id(t) in masks) / steps,
                "mask_bytes_as_float32": sum(b.numel() * 4 for n, b in model.named_buffers() if n.endswith("_mask")),
            }
            del ddp
        if rank == 0:
            Path(result_path).write_text(json.dumps(out))
    finally:
        dist._broadcast_coalesced = real
        dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="full", help="MIR-L size: tiny, small or full")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ddp_traffic.json")
    args = ap.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        mp.spawn(
            _worker,
            args=(2, f"file://{Path(tmp) / 'rendezvous'}", args.size, args.steps, str(result)),
            nprocs=2,
            join=True,
        )
        measured = json.loads(result.read_text())
    print(f"MIR-L {args.size}, 2 gloo processes, {args.steps} steps: DDP's buffer broadcast per step")
    print(f"{'pattern':<36} {'bytes/step':>14} {'of which masks':>15}")
    for variant, r in measured.items():
        print(f"{variant:<36} {r['bytes_per_step']:>14,.0f} {r['mask_bytes_per_step']:>15,.0f}")
    before = next(iter(measured.values()))["mask_bytes_as_float32"]
    print(f"(masks were float32 before they were bool: {before:,} bytes per step)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "model": f"mirl/{args.size}",
                "steps": args.steps,
                "world_size": 2,
                "variants": measured,
                "float32_masks_bytes_per_step": before,
                "provenance": provenance(sitting),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
