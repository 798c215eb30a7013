"""A lottery ticket in Restormer for one task, with late rewinding, against the dense network.

Iterative magnitude pruning through the Python API: round 0 trains the dense
Restormer and records its weights at optimizer step K; every later round removes 20%
of the remaining weights (one global magnitude threshold), rewinds the survivors to
step K (late rewinding, which tickets in larger networks need) and trains again with
the same schedule. Each round is evaluated on the task's test set, and the ticket is
compared with the dense network at the end.

CPU default (built-in sample images, Gaussian denoising at sigma 25, Restormer tiny,
4 rounds of 300 steps: a few minutes on 2 cores):

    python examples/restormer_lth.py

Your data and a GPU (the 'denoise' folder layout: train/denoise/{WED,BSD400},
test/denoise/{BSD68,Urban100}; see `lotteryir data layout denoise`):

    python examples/restormer_lth.py --size full-biasfree --device cuda --data-root /data \\
        --patch 128 --steps 30000 --rounds 10 --rewind-step 1000 --out runs/restormer_ticket

Other tasks of the sample recipe: --task denoise_15 | denoise_50 | derain | dehaze | web
(with --data-root, --task picks the folder recipe of its family: denoise, derain, dehaze, web).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import lotteryir
from lotteryir import IterativeMagnitudePruner
from lotteryir.data import DataError, get_recipe, task_family
from lotteryir.engine import RestorationTrainer, TrainConfig, evaluate
from lotteryir.models import build_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Restormer lottery ticket with late rewinding (one task)")
    p.add_argument("--task", default="denoise_25", help="denoise_15/25/50, derain, dehaze or web (default denoise_25)")
    p.add_argument(
        "--data-root", type=Path, default=None, help="folder tree of the task's recipe (default: built-in sample)"
    )
    p.add_argument("--size", default="tiny", help="restormer size: tiny (default), small, full, full-biasfree")
    p.add_argument("--rounds", type=int, default=4, help="pruning rounds of 20%% (default 4: density 0.41)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per round (default 300)")
    p.add_argument("--rewind-step", type=int, default=None, help="late-rewinding step K (default: 5%% of --steps)")
    p.add_argument("--patch", type=int, default=48, help="training crop (default 48)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument(
        "--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3; the paper's 2e-4 for full size)"
    )
    p.add_argument(
        "--test-images", type=int, default=None, help="with the sample recipe: use only the first N test images"
    )
    p.add_argument("--tile", type=int, default=None, help="tiled inference for large test images (e.g. 256)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="write the final ticket here (a folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rewind_step = args.rewind_step or max(1, round(0.05 * args.steps))

    try:
        if args.data_root is None:
            train_recipe = get_recipe("sample")
            test_recipe = get_recipe("sample", max_images=args.test_images) if args.test_images else train_recipe
        else:
            train_recipe = test_recipe = get_recipe(task_family(args.task), root=args.data_root)
            problems = train_recipe.check()
            if problems:
                print("the data is not ready:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 2
        train_set = train_recipe.train_dataset(patch_size=args.patch, seed=0, tasks=[args.task])
        test_sets = test_recipe.test_sets(tasks=[args.task])
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    torch.manual_seed(0)
    model = build_model("restormer", args.size)
    params = sum(t.numel() for t in model.parameters())
    print(
        f"restormer/{args.size} ({params:,} params) on {args.task}: {len(train_set)} training crops of {args.patch} "
        "px, "
        f"test sets {', '.join(test_sets)}"
    )
    print(
        f"{args.rounds} rounds x {args.steps} steps, 20% global magnitude pruning per round, rewind to step "
        f"{rewind_step}"
    )

    def progress(info) -> None:
        if info.step % max(1, info.total_steps // 4) == 0:
            print(
                f"  round {info.round} step {info.step}/{info.total_steps} loss {info.mean_loss:.4f} "
                f"({info.steps_per_sec:.1f} steps/s)",
                flush=True,
            )

    config = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, device=args.device, checkpoint_every=None)
    trainer = RestorationTrainer(train_set, config, progress=progress)

    def train_and_evaluate(model: torch.nn.Module, ctx: lotteryir.RoundContext) -> dict:
        metrics = trainer(model, ctx)
        scores = evaluate(model, test_sets, tile=args.tile, device=args.device).summary()
        metrics["psnr"] = sum(s["psnr"] for s in scores.values()) / len(scores)
        metrics["ssim"] = sum(s["ssim"] for s in scores.values()) / len(scores)
        return metrics

    def report(record) -> None:
        print(
            f"round {record.round}: density {record.density:.3f} PSNR {record.metrics['psnr']:.2f} dB "
            f"SSIM {record.metrics['ssim']:.4f} ({record.seconds:.0f} s)",
            flush=True,
        )

    pruner = IterativeMagnitudePruner(
        model,
        train_and_evaluate,
        rate=0.2,
        rounds=args.rounds,
        scope="global",
        rewind=f"step:{rewind_step}",
        on_round_end=report,
    )
    pruner.run()

    dense, ticket = pruner.history[0], pruner.history[-1]
    print(f"\n{'':<16}{'density':>9}{'PSNR (dB)':>11}{'SSIM':>8}")
    for name, rec in (("dense", dense), ("ticket", ticket)):
        print(f"{name:<16}{rec.density:>9.3f}{rec.metrics['psnr']:>11.2f}{rec.metrics['ssim']:>8.4f}")
    print(
        f"ticket - dense: {ticket.metrics['psnr'] - dense.metrics['psnr']:+.2f} dB PSNR, "
        f"{ticket.metrics['ssim'] - dense.metrics['ssim']:+.4f} SSIM at {ticket.density:.1%} of the weights"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"restormer_{args.size}_{args.task}_ticket.safetensors"
        lotteryir.save_ticket(model, path, task=args.task, rewind=f"step:{rewind_step}")
        print(f"ticket written to {path} (load with lotteryir.load_ticket)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
