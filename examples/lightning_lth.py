"""A lottery ticket in your Lightning project: the pruner drives your LightningModule and Trainer.

Below is a training module of the kind PromptIR and MIR-L train with (a restorer, L1 loss, AdamW,
linear warm-up then cosine decay, a ``(degraded, clean)`` batch), and the few lines that hand it to
lotteryir. Each round is one ``Trainer.fit`` of a Trainer that *your* function builds, so callbacks,
logger, precision, gradient clipping and strategy stay yours:

    def make_trainer(ctx):                      # a new Trainer every round
        return L.Trainer(max_steps=steps, callbacks=[ModelCheckpoint(dirpath=f"ckpt/round{ctx.round}")])

    pruner = IterativeMagnitudePruner(module, lightning_closure(make_trainer, train_dataloaders=loader),
                                      rate=0.2, rounds=3, rewind="init")
    pruner.run()                                # round 0 dense, then prune 20% / rewind / fit again

The network is lotteryir's MIR-L (PromptIR architecture) and the data the built-in sample
photographs (all tasks synthesized, no download). Every round writes a Lightning checkpoint
(``last.ckpt``) inside ``--out/round<r>`` and the pruner's state after it, so rerunning the same
command resumes: finished rounds from the pruner state, the interrupted round from its checkpoint.
Each training logs to its own TensorBoard version, ``--out/logs/round<r>-<kind>`` (every fit counts
from step 0: one shared logger would draw the rounds over each other). At the end the ticket's
network is written twice: as a ticket file, and as the plain state dict of ``module.net``
(``inner_state_dict``), which loads strictly into a freshly built MIR-L.

Run (CPU; ``--smoke`` takes tens of seconds, the default about ten minutes on 2 cores):

    python examples/lightning_lth.py --smoke
    python examples/lightning_lth.py --rounds 5 --steps 500 --out runs/lightning_lth
    python examples/lightning_lth.py --size full --accelerator gpu --devices 4 \\
        --strategy ddp_find_unused_parameters_true --out runs/lightning_ddp

(MIR-L trains with ``ddp_find_unused_parameters_true``: PromptIR builds layers it never calls. Under
ddp give ``--out``: Lightning starts the other ranks by running this command again, and every rank
must find the same checkpoints.)
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader

import lotteryir
from lotteryir import IterativeMagnitudePruner
from lotteryir.data import get_recipe
from lotteryir.engine import evaluate
from lotteryir.integrations.lightning import inner_state_dict, lightning_closure
from lotteryir.models import build_model


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor of 0-based step ``step``: linear warm-up, then a cosine to 0 at ``total``.

    Per optimizer step; MIR-L's LinearWarmupCosineAnnealingLR steps per epoch (15 warm-up epochs of 150).
    """
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


class RestorationModule(L.LightningModule):
    """A restorer trained as PromptIR / MIR-L train theirs: L1 loss, AdamW, warm-up + cosine."""

    def __init__(self, net: nn.Module, lr: float = 2e-4, warmup_steps: int = 15, total_steps: int = 150) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = nn.L1Loss()
        self.lr, self.warmup_steps, self.total_steps = lr, warmup_steps, total_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        restored = self.net(batch["input"])
        loss = self.loss_fn(restored, batch["target"])
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        # Runs inside every fit, after the pruner attached its masks: the optimizer holds the w_orig tensors.
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr)
        factor = lambda step: warmup_cosine(step, self.warmup_steps, self.total_steps)  # noqa: E731
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="IMP on a PromptIR-style LightningModule (MIR-L network, sample data)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: 2 rounds of 3 steps, one test image")
    p.add_argument("--size", default="tiny", help="mirl size: tiny (default), small, full (the paper)")
    p.add_argument("--rounds", type=int, default=3, help="pruning rounds of --rate (default 3)")
    p.add_argument("--rate", type=float, default=0.2)
    p.add_argument("--rewind", default="init", help="init (the paper), step:K or none")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps per round (default 100)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (the paper: 2e-4 at full size)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--test-images", type=int, default=None, help="score on the first N sample test images")
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--devices", default="1")
    p.add_argument("--strategy", default="auto")
    p.add_argument("--precision", default="32-true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    args = p.parse_args(argv)
    if args.smoke:
        args.rounds, args.steps, args.batch, args.patch, args.test_images = 2, 3, 2, 32, 1
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="lightning_lth_"))

    train_set = get_recipe("sample").train_dataset(patch_size=args.patch, seed=0)
    tasks = ["denoise_25"] if args.smoke else None
    test_sets = get_recipe("sample", max_images=args.test_images).test_sets(tasks=tasks)
    loader = DataLoader(train_set, batch_size=args.batch, shuffle=True, drop_last=True)

    torch.manual_seed(0)
    warmup = max(1, round(args.steps * 15 / 120))  # the paper: 15 of 120 epochs
    module = RestorationModule(build_model("mirl", args.size), args.lr, warmup, args.steps)

    # ---- the lotteryir part ----------------------------------------------------------------
    def make_trainer(ctx: lotteryir.RoundContext) -> L.Trainer:
        every = max(1, args.steps // 4)
        save = ModelCheckpoint(dirpath=out / f"round{ctx.round}", every_n_train_steps=every, save_last=True)
        # One version per training: a resumed round writes on in its own folder, from its checkpoint's step.
        logger = TensorBoardLogger(out / "logs", name="", version=f"round{ctx.round}-{ctx.kind}")
        return L.Trainer(
            max_steps=args.steps,
            accelerator=args.accelerator,
            devices=int(args.devices) if args.devices.isdigit() else args.devices,
            strategy=args.strategy,
            precision=args.precision,
            callbacks=[save],
            logger=logger,
            log_every_n_steps=max(1, args.steps // 50),
            enable_progress_bar=False,
            enable_model_summary=False,
        )

    def last_checkpoint(ctx: lotteryir.RoundContext) -> Path | None:
        path = out / f"round{ctx.round}" / "last.ckpt"  # the round an earlier run was interrupted in
        return path if path.is_file() else None

    def report(record) -> None:
        if rank() != 0:  # under ddp every rank prunes its replica; one writes and reports
            return
        pruner.save_state(out / "pruner")  # the resume point: finished rounds
        scores = evaluate(module.net, test_sets, device="cpu").summary()
        psnr = sum(s["psnr"] for s in scores.values()) / len(scores)
        loss = record.metrics.get("train_loss", float("nan"))
        print(f"round {record.round}: density {record.density:.3f} loss {loss:.4f} PSNR {psnr:.2f} dB", flush=True)

    closure = lightning_closure(make_trainer, train_dataloaders=loader, ckpt_path=last_checkpoint)
    pruner = IterativeMagnitudePruner(
        module, closure, rate=args.rate, rounds=args.rounds, rewind=args.rewind, on_round_end=report
    )
    if (out / "pruner").is_dir():
        pruner.load_state(out / "pruner")
        print(f"resuming after round {pruner.round}")
    pruner.run()
    # -----------------------------------------------------------------------------------------

    if rank() == 0:
        path = out / "ticket.safetensors"
        lotteryir.save_ticket(module.net, path, rewind=args.rewind)  # names without the module's "net." prefix
        reloaded = lotteryir.load_ticket(path).model
        x = next(iter(test_sets.values()))[0]["input"][None]
        with torch.no_grad():
            same = torch.allclose(reloaded(x), module.net(x), atol=1e-5)
        print(f"ticket at density {pruner.density:.3f} written to {path}; reloaded outputs match: {same}")
        # The network as MIR-L publishes it: module.net's keys, without the LightningModule's "net." prefix.
        save_file(inner_state_dict(module, "net"), out / "net.safetensors")
        published = build_model("mirl", args.size)
        published.load_state_dict(load_file(out / "net.safetensors"))  # strict: every key, nothing more
        with torch.no_grad():
            same = torch.equal(published(x), module.net(x))
        print(f"net.safetensors loads strictly into a new mirl/{args.size}; outputs match: {same}")
        print(f"curves: tensorboard --logdir {out / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
