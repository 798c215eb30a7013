"""Run by test_lightning_ddp.py: IMP through Lightning's ``ddp`` strategy, 2 CPU processes (gloo).

Lightning's launcher starts rank 1 by running this file again. Each rank writes what it saw after
every round to ``OUT/rank<r>.json``. With ``--corrupt-round R`` rank 1 flips one mask entry before
round R's fit, which the PruningCallback must catch on both ranks (MaskMismatchError).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import lightning.pytorch as L
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lotteryir import IterativeMagnitudePruner  # noqa: E402
from lotteryir.integrations.lightning import lightning_closure, module_mask  # noqa: E402
from lotteryir.pruning import mask_checksum  # noqa: E402
from tests.integrations.lit import QUIET, TinyLit, loader  # noqa: E402


class Watch(L.Callback):
    """Records the DDP wrapper's ignore list (the masks must be on it: never broadcast)."""

    def __init__(self, seen: dict) -> None:
        self.seen = seen

    def on_train_start(self, trainer, pl_module) -> None:
        ddp = trainer.strategy.model
        self.seen["wrapper"] = type(ddp).__name__
        self.seen["ignored"] = sorted(getattr(ddp, "parameters_to_ignore", ()))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--corrupt-round", type=int, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the same initial weights on every rank
    module = TinyLit()
    seen: dict = {}

    def make_trainer(ctx):
        if ctx.round == args.corrupt_round and dist.get_rank() == 1:
            with torch.no_grad():
                module.a.weight_mask.view(-1)[0] ^= True
        return L.Trainer(
            max_steps=3, strategy="ddp", devices=2, callbacks=[Watch(seen)], enable_checkpointing=False, **QUIET
        )

    def report(record) -> None:
        rank = dist.get_rank()
        entry = {
            "round": record.round,
            "density": record.density,
            "world": dist.get_world_size(),
            "backend": dist.get_backend(),
            "checksum": mask_checksum(module_mask(module)).tolist(),
            "weights": float(sum(t.double().sum() for t in module.state_dict().values() if t.is_floating_point())),
            **seen,
        }
        path = args.out / f"rank{rank}.json"
        history = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*history, entry]))

    closure = lightning_closure(make_trainer, train_dataloaders=loader(n=12, batch=2))
    pruner = IterativeMagnitudePruner(module, closure, rate=0.5, rounds=2, rewind="init", on_round_end=report)
    pruner.run()
    print(f"rank {os.environ.get('LOCAL_RANK', '0')} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
