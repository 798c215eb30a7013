"""Find a lottery ticket in your own restorer, trained by your own loop.

Nothing here comes from ``lotteryir.models``, ``lotteryir.data`` or ``lotteryir.engine``:
the network is a small residual denoiser defined below, the data is synthetic, and
training is a plain PyTorch loop. lotteryir only needs that loop as a closure:

    def train(model, ctx):                       # one round; trains model in place
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # fresh every round
        for k in range(1, steps + 1):
            ...forward, loss, backward, optimizer.step()...
            ctx.step(k)                          # lets "rewind to step K" take its snapshot
        return {"loss": loss.item()}             # any JSON-able metrics

    pruner = IterativeMagnitudePruner(model, train, rate=0.2, rounds=3)
    pruner.run()                                 # round 0 dense, then prune 20% / rewind / train
    lotteryir.save_ticket(model, "ticket.safetensors")

The masks are attached when the pruner is created, so build optimizers inside the
closure (or after the pruner). The ticket is exported twice: as a plain state dict
(``pruner.export_state_dict()``, pruned entries as zeros, saved with safetensors) and as
a compact ticket (``lotteryir.save_ticket``); both reload with ``load_state_dict(strict=True)``
into a fresh, unpruned instance of the class below, whose outputs must match the pruned model's.

Run (CPU, about a minute):

    python examples/wrap_your_own.py
    python examples/wrap_your_own.py --rounds 10 --steps 2000 --width 64 --device cuda

Multi-GPU with your own DistributedDataParallel loop (``torchrun --nproc_per_node 4 my_script.py``):

    dist.init_process_group("nccl"); torch.cuda.set_device(local_rank)
    model = MyRestorer().cuda()
    pruner = IterativeMagnitudePruner(model, rate=0.2, rounds=15)  # BEFORE DDP: it attaches
    ddp = DistributedDataParallel(model, device_ids=[local_rank])    # all-ones masks, so the
                                                                      # parameter set never changes
    def train(m, ctx):                            # m is the unwrapped model; train through ddp
        optimizer = torch.optim.AdamW(ddp.parameters(), lr=2e-4)
        ...your loop over ddp(x), with a DistributedSampler...; ctx.step(k) after each step
        return {"loss": loss.item()}

    for _ in range(pruner.rounds + 1):
        pruner.run_round(train)                   # on every rank: the replicas are identical, so
                                                  # every rank computes the same mask, and prune()
                                                  # verifies that with a checksum all-reduce
                                                  # (MaskMismatchError on every rank otherwise)
        if dist.get_rank() == 0:                  # only rank 0 writes files and evaluates
            pruner.save_state("run/pruner")
        dist.barrier()                            # everyone waits for rank 0 before the next round
    if dist.get_rank() == 0:
        lotteryir.save_ticket(model, "ticket.safetensors")

Seed every rank identically before building the model: the pruner snapshots the
initialization on each rank for rewinding, and DDP's broadcast of rank 0's weights at
construction would not reach those snapshots. For PromptIR/MIR-L, which builds layers it
never calls, pass ``find_unused_parameters=True`` to DistributedDataParallel.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

import lotteryir
from lotteryir import IterativeMagnitudePruner


class ResidualDenoiser(nn.Module):
    """A plain DnCNN-style restorer: conv stack predicting the residual, added to the input."""

    def __init__(self, width: int = 32, depth: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def make_batch(n: int, size: int, sigma: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random colour images and their noisy versions (stand-in for your data loader)."""
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=generator)
    clean = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    noisy = clean + sigma / 255 * torch.randn(clean.shape, generator=generator)
    return noisy, clean


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / F.mse_loss(a.clamp(0, 1), b)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="IMP on a self-defined restorer and a plain training loop")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="pruning rounds (density 0.8^rounds)")
    p.add_argument("--steps", type=int, default=150, help="optimizer steps per round")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rewind", default="init", help="init, step:K or none")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="folder for the exported ticket (default: a temp folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = ResidualDenoiser(args.width, args.depth).to(device)
    val_noisy, val_clean = (t.to(device) for t in make_batch(8, 64, args.sigma, torch.Generator().manual_seed(1234)))

    # ---- your training loop, as a closure ---------------------------------------------------
    def train(model: nn.Module, ctx: lotteryir.RoundContext) -> dict[str, float]:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        generator = torch.Generator().manual_seed(ctx.seed * 1000 + ctx.round)
        model.train()
        for k in range(1, args.steps + 1):
            noisy, clean = (t.to(device) for t in make_batch(args.batch, args.patch, args.sigma, generator))
            loss = F.mse_loss(model(noisy), clean)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ctx.step(k)
        model.eval()
        with torch.no_grad():
            val = psnr(model(val_noisy), val_clean)
        return {"loss": loss.item(), "val_psnr": val}

    # ---- lotteryir: a handful of lines ------------------------------------------------------
    pruner = IterativeMagnitudePruner(model, train, rate=0.2, rounds=args.rounds, rewind=args.rewind)
    for record in pruner.run():
        print(f"round {record.round}: density {record.density:.3f} ({record.remaining:,}/{record.total:,} weights), "
              f"val PSNR {record.metrics['val_psnr']:.2f} dB (noisy input {psnr(val_noisy, val_clean):.2f} dB)", flush=True)

    out = args.out or Path(tempfile.mkdtemp(prefix="lotteryir-ticket-"))
    out.mkdir(parents=True, exist_ok=True)
    plain_path, ticket_path = out / "ticket_plain.safetensors", out / "ticket.safetensors"
    save_file(pruner.export_state_dict(), str(plain_path))  # pruned entries are exact zeros
    lotteryir.save_ticket(model, ticket_path)                # compact: mask + survivors
    print(f"exported {plain_path} ({plain_path.stat().st_size:,} bytes) and {ticket_path} "
          f"({ticket_path.stat().st_size:,} bytes)")

    # ---- reload into a plain instance of your own class -------------------------------------
    model.eval()
    with torch.no_grad():
        expected = model(val_noisy)
    ok = True
    for path, state in ((plain_path, load_file(str(plain_path))), (ticket_path, lotteryir.read_ticket(ticket_path)[0])):
        fresh = ResidualDenoiser(args.width, args.depth).to(device).eval()
        fresh.load_state_dict(state, strict=True)
        with torch.no_grad():
            diff = (fresh(val_noisy) - expected).abs().max().item()
        zeros = sum(int((m.weight == 0).sum()) for m in fresh.modules() if isinstance(m, nn.Conv2d))
        total = sum(m.weight.numel() for m in fresh.modules() if isinstance(m, nn.Conv2d))
        match = diff <= 1e-5 and math.isclose(1 - zeros / total, pruner.density, abs_tol=1e-3)
        ok &= match
        print(f"reloaded {path.name} into a fresh ResidualDenoiser (strict): density {1 - zeros / total:.3f}, "
              f"max output difference {diff:.2e} -> {'OK' if match else 'MISMATCH'}")
    print("reload check passed" if ok else "reload check FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
