"""The MIR-L paper's recipe through the Python API: all-in-one MIR-L, 15 rounds of 20% global, rewind to init.

Settings (the paper / PromptIR code): the full MIR-L (PromptIR) network; all-in-one
training on BSD400+WED denoising (sigma 15/25/50), Rain100L deraining and RESIDE OTS
dehazing with the paper's repeat factors; 64 px crops, batch 8, AdamW at lr 2e-4,
120 epochs per round with 15 warm-up epochs and a cosine decay, restarted every round;
15 rounds of global magnitude pruning at 20% (density 0.8^15 = 0.035), survivors
rewound to the initialization. Every round is evaluated on BSD68, Urban100, Rain100L
and SOTS.

The data root must hold the standard layout; the script checks it first and, if
anything is missing, names each problem and exits with status 2:

    <root>/train/denoise/WED/, train/denoise/BSD400/          clean images
    <root>/train/derain/Rain100L/{input,target}/              x_rainy.png / x_gt.png
    <root>/train/dehaze/OTS/{input,target}/                   x_hazy.jpg / x_gt.jpg
    <root>/test/denoise/BSD68/, test/denoise/Urban100/        clean images
    <root>/test/derain/Rain100L/{input,target}/, test/dehaze/SOTS/{input,target}/

Run (a GPU; weeks for all 15 rounds, as in the paper; resumable: rerun the same command):

    python examples/mirl_paper.py /data/mirl --device cuda --out runs/mirl_paper

The run directory gets the pruner state after each round (resume point), a training
checkpoint inside each round (mid-round resume), one ticket per round
(ticket_round<r>.safetensors) and history.json with every round's PSNR/SSIM.
A tiny dry run (seconds): --size tiny --steps 2 --rounds 1 --workers 0 --device cpu.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import lotteryir
from lotteryir import IterativeMagnitudePruner
from lotteryir.data import DataError, get_recipe
from lotteryir.engine import RestorationTrainer, TrainConfig, evaluate
from lotteryir.models import build_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The MIR-L paper's lottery-ticket recipe (all-in-one)")
    p.add_argument("root", type=Path, help="data root with the MIR-L folder layout")
    p.add_argument("--out", type=Path, default=Path("runs/mirl_paper"), help="run directory (default runs/mirl_paper)")
    p.add_argument("--size", default="full", help="mirl size: full (the paper, default), small, tiny")
    p.add_argument("--rounds", type=int, default=15, help="pruning rounds (paper: 15)")
    p.add_argument("--rate", type=float, default=0.2, help="fraction pruned per round (paper: 0.2)")
    p.add_argument("--epochs", type=int, default=120, help="epochs per round (paper: 120)")
    p.add_argument("--warmup-epochs", type=float, default=15, help="linear warm-up epochs (paper: 15)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per round instead of --epochs (dry runs)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--tile", type=int, default=None, help="tiled inference for evaluation (e.g. 256 on small GPUs)")
    p.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    p.add_argument("--workers", type=int, default=4, help="data-loader workers")
    args = p.parse_args(argv)

    # 1. The data, checked before anything expensive.
    try:
        recipe = get_recipe("mirl", root=args.root)
        problems = recipe.check()
    except DataError as exc:
        print(f"the data root is not usable:\n{exc}", file=sys.stderr)
        return 2
    if problems:
        print(f"{len(problems)} problem(s) with the data under {args.root}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(f"expected layout:\n{recipe.describe()}", file=sys.stderr)
        return 2
    train_set = recipe.train_dataset(patch_size=args.patch, seed=0)
    test_sets = recipe.test_sets()
    print(
        f"data: {len(train_set):,} training crops per epoch over {', '.join(recipe.tasks)}; "
        f"test sets {', '.join(test_sets)}"
    )

    # 2. The network, the training closure (the paper's schedule), the pruner.
    torch.manual_seed(0)
    model = build_model("mirl", args.size)
    length = {"steps": args.steps} if args.steps else {"epochs": args.epochs, "warmup_epochs": args.warmup_epochs}
    config = TrainConfig(**length, lr=args.lr, batch_size=args.batch, device=args.device, num_workers=args.workers)
    trainer = RestorationTrainer(train_set, config, progress=_progress)
    per_epoch, total, warmup = trainer.plan()
    print(
        f"mirl/{args.size}: {sum(t.numel() for t in model.parameters()):,} params; "
        f"{total:,} steps per round ({per_epoch:,} per epoch, {warmup:,} warm-up); "
        f"{args.rounds} rounds of {args.rate:.0%} global, rewind to init"
    )

    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    def train_and_evaluate(model: torch.nn.Module, ctx: lotteryir.RoundContext) -> dict:
        ctx.checkpoint_dir = out / f"round{ctx.round:02d}"  # mid-round resume
        metrics = trainer(model, ctx)
        metrics["eval"] = evaluate(model, test_sets, tile=args.tile, device=args.device).summary()
        return metrics

    def on_round_end(record) -> None:
        pruner.save_state(out / "pruner")
        lotteryir.save_ticket(model, out / f"ticket_round{record.round:02d}.safetensors", round=record.round)
        (out / "history.json").write_text(json.dumps([h.to_dict() for h in pruner.history], indent=2))
        scores = "  ".join(f"{label} {s['psnr']:.2f}/{s['ssim']:.4f}" for label, s in record.metrics["eval"].items())
        print(f"round {record.round}: density {record.density:.4f}  PSNR/SSIM  {scores}", flush=True)

    pruner = IterativeMagnitudePruner(
        model,
        train_and_evaluate,
        rate=args.rate,
        rounds=args.rounds,
        scope="global",
        rewind="init",
        on_round_end=on_round_end,
    )
    if (out / "pruner" / "pruner.json").is_file():
        pruner.load_state(out / "pruner")
        print(f"resuming {out}: round {pruner.round} of {args.rounds} done (density {pruner.density:.4f})")
    pruner.run()
    print(f"done: final ticket {out / f'ticket_round{args.rounds:02d}.safetensors'} at density {pruner.density:.4f}")
    return 0


def _progress(info) -> None:
    if info.step == info.total_steps or info.step % 1000 == 0:
        print(
            f"  round {info.round} step {info.step:,}/{info.total_steps:,} loss {info.mean_loss:.4f} "
            f"lr {info.lr:.2e} ({info.steps_per_sec:.1f} steps/s, {info.eta_seconds / 60:.0f} min left)",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
