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

    pruner = IterativeMagnitudePruner(model, train, rate=0.2, rounds=3, rewind_points=[K])
    for record in pruner.iter_rounds(): ...      # round 0 dense, then prune 20% / rewind / train
    pruner.extend(rounds=1, rewind=f"step:{K}")  # one more round, survivors back to step K
    lotteryir.save_ticket(model, "ticket.safetensors")

What it shows, in order:

- The run, round by round as each finishes (``iter_rounds``), optionally through
  ``torch.compile`` (``--compile``: masks are hooks that compile into the same single
  graph as the dense network's, and pruning never recompiles).
- Continuing the finished run: ``pruner.extend`` adds a round that rewinds to step K
  of round 0 instead of to the initialization (``rewind_points`` kept those weights).
- The ticket exported twice, as a plain state dict (``pruner.export_state_dict()``,
  pruned entries as zeros) and as a compact ticket (``lotteryir.save_ticket``); both
  reload strictly into a fresh, unpruned ``ResidualDenoiser`` with the same outputs.
- Your model on the command line: ``lotteryir restore`` runs the ticket on an image,
  the network named as ``examples/wrap_your_own.py:ResidualDenoiser`` (its defaults,
  width 32 and depth 5). ``lotteryir prune --model examples/wrap_your_own.py:ResidualDenoiser``
  searches a ticket of it on the built-in sample data the same way.

Run (CPU, about a minute):

    python examples/wrap_your_own.py
    python examples/wrap_your_own.py --compile
    python examples/wrap_your_own.py --rounds 10 --steps 2000 --width 64 --device cuda

Multi-GPU with your own DistributedDataParallel loop (``torchrun --nproc_per_node 4 my_script.py``):

    dist.init_process_group("nccl"); torch.cuda.set_device(local_rank)
    torch.manual_seed(0)                          # the same initial weights on every rank
    model = MyRestorer().cuda()
    pruner = IterativeMagnitudePruner(model, rate=0.2, rounds=15)  # BEFORE DDP: it attaches the masks,
    ddp = DistributedDataParallel(model, device_ids=[local_rank])    # checks every rank starts from the
                                                                      # same weights, and keeps the masks
                                                                      # out of DDP's per-step broadcast
    def train(m, ctx):                            # m is the unwrapped model; train through ddp
        optimizer = torch.optim.AdamW(ddp.parameters(), lr=2e-4)
        ...your loop over ddp(x), with a DistributedSampler...; ctx.step(k) after each step
        return {"loss": loss.item()}

    for record in pruner.iter_rounds(train):      # on every rank: the replicas are identical, so
        if dist.get_rank() == 0:                  # every rank computes the same mask, and prune()
            pruner.save_state("run/pruner")       # verifies that with a checksum all-reduce
        dist.barrier()                            # (MaskMismatchError on every rank otherwise)
    if dist.get_rank() == 0:
        lotteryir.save_ticket(model, "ticket.safetensors")

For PromptIR/MIR-L, which builds layers it never calls, pass ``find_unused_parameters=True``
to DistributedDataParallel.
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
from lotteryir.pruning import RoundRecord

# This network named as the command line takes it: a file and the class (or function) that builds it.
MODEL_SPEC = f"{Path(__file__).resolve()}:ResidualDenoiser"


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
    p.add_argument(
        "--extend-to-step",
        type=int,
        default=10,
        metavar="K",
        help="after the run, one more round that rewinds to step K of round 0 (0: skip)",
    )
    p.add_argument("--compile", action="store_true", help="train through torch.compile(model)")
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
        net = torch.compile(model) if args.compile else model  # the masks' hooks compile with it
        model.train()
        for k in range(1, args.steps + 1):
            noisy, clean = (t.to(device) for t in make_batch(args.batch, args.patch, args.sigma, generator))
            loss = F.mse_loss(net(noisy), clean)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ctx.step(k)
        model.eval()
        with torch.no_grad():
            val = psnr(model(val_noisy), val_clean)
        return {"loss": loss.item(), "val_psnr": val}

    def show(record: RoundRecord) -> None:
        print(
            f"round {record.round}: density {record.density:.3f} ({record.remaining:,}/{record.total:,} weights), "
            f"rewound to {record.rewind or '-'}, val PSNR {record.metrics['val_psnr']:.2f} dB "
            f"(noisy input {psnr(val_noisy, val_clean):.2f} dB)",
            flush=True,
        )

    # ---- lotteryir: a handful of lines ------------------------------------------------------
    keep = [args.extend_to_step] if 0 < args.extend_to_step <= args.steps else []
    pruner = IterativeMagnitudePruner(
        model, train, rate=0.2, rounds=args.rounds, rewind=args.rewind, rewind_points=keep
    )
    for record in pruner.iter_rounds():  # each round printed as soon as it is done
        show(record)
    if keep:  # the finished run grows: one more round, survivors rewound to step K of round 0
        pruner.extend(rounds=1, rewind=f"step:{keep[0]}")
        for record in pruner.iter_rounds():
            show(record)

    out = args.out or Path(tempfile.mkdtemp(prefix="lotteryir-ticket-"))
    out.mkdir(parents=True, exist_ok=True)
    plain_path, ticket_path = out / "ticket_plain.safetensors", out / "ticket.safetensors"
    save_file(pruner.export_state_dict(), str(plain_path))  # pruned entries are exact zeros
    lotteryir.save_ticket(model, ticket_path, name=MODEL_SPEC, size="default")  # compact: mask + survivors
    print(
        f"exported {plain_path} ({plain_path.stat().st_size:,} bytes) and {ticket_path} "
        f"({ticket_path.stat().st_size:,} bytes)"
    )

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
        print(
            f"reloaded {path.name} into a fresh ResidualDenoiser (strict): density {1 - zeros / total:.3f}, "
            f"max output difference {diff:.2e} -> {'OK' if match else 'MISMATCH'}"
        )
    print("reload check passed" if ok else "reload check FAILED")

    # ---- your model on the command line ------------------------------------------------------
    if (args.width, args.depth) == (32, 5):  # what ResidualDenoiser() builds: the CLI calls it with no arguments
        from lotteryir.cli import main as cli
        from lotteryir.data import write_image

        write_image(val_noisy[0].cpu().clamp(0, 1), out / "noisy.png")
        command = [
            "restore",
            str(ticket_path),
            str(out / "noisy.png"),
            "-o",
            str(out / "restored"),
            "--model",
            MODEL_SPEC,
        ]
        print("lotteryir " + " ".join(command))
        ok &= cli(command) == 0
    else:
        print(
            f"(the command line builds ResidualDenoiser() at its defaults, 32 x 5; this run used "
            f"{args.width} x {args.depth}, so it is not run here)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
