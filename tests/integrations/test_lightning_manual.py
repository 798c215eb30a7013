"""rewind="step:K" under manual optimization and several optimizers: K is the Trainer's global_step.

Lightning's global_step counts every ``optimizer.step()`` of every optimizer; weights exist between
batches only, so a K that one batch steps over is snapshot at the end of that batch, recorded as the
step it really is, with a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

L = pytest.importorskip("lightning.pytorch")

from lotteryir import IterativeMagnitudePruner  # noqa: E402
from lotteryir.integrations.lightning import lightning_closure  # noqa: E402
from lotteryir.pruning.rewind import named_tensors  # noqa: E402

from .lit import QUIET, ManualLit, loader  # noqa: E402


class BatchEnds(L.Callback):
    """The weights and global_step at the end of every batch of round 0, and the weights round 1 starts from."""

    def __init__(self, log: dict[str, Any], r: int) -> None:
        self.rec, self.r = log, r

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.r == 0:
            weights = {k: t.detach().clone() for k, t in named_tensors(pl_module).items()}
            self.rec["batches"].append((trainer.global_step, weights))

    def on_train_start(self, trainer, pl_module) -> None:
        if self.r == 1:
            self.rec["start1"] = {k: t.detach().clone() for k, t in named_tensors(pl_module).items()}


def run(every: tuple[int, ...], rewind: str, max_steps: int, rewind_points: tuple[int, ...] = ()) -> tuple:
    """Round 0 and one pruning round of ManualLit; what each batch ended with; the rewind callbacks' steps."""
    torch.manual_seed(0)
    module, log, marked = ManualLit(every), {"batches": []}, []

    def make_trainer(ctx):
        callbacks = [BatchEnds(log, ctx.round)]
        return L.Trainer(max_steps=max_steps, enable_checkpointing=False, callbacks=callbacks, **QUIET)

    closure = lightning_closure(make_trainer, train_dataloaders=loader(n=16))
    pruner = IterativeMagnitudePruner(
        module, closure, rate=0.5, rounds=1, rewind=rewind, rewind_points=rewind_points, on_rewind_point=marked.append
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruner.run()
    told = [str(w.message) for w in caught if "global_step" in str(w.message)]
    return pruner, log, marked, told


def assert_point(pruner: IterativeMagnitudePruner, log: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
    """The snapshot is ``weights`` bit for bit, and round 1 started from it (pruned entries zero)."""
    assert pruner._snapshot is not None and set(pruner._snapshot) == set(weights)
    assert all(torch.equal(pruner._snapshot[k], v) for k, v in weights.items())
    mask = pruner.mask
    for key, value in weights.items():
        expected = value * mask[key] if key in mask else value
        assert torch.equal(log["start1"][key], expected), key


def test_two_optimizers_step_k_reached_between_batches() -> None:
    """Both optimizers step every batch: global_step goes 2, 4, 6, ...; step:4 is the end of batch 2."""
    pruner, log, marked, told = run((1, 1), "step:4", max_steps=8)
    assert [step for step, _ in log["batches"]] == [2, 4, 6, 8]
    assert pruner._snapshot_step == 4 and marked == [4] and told == []
    assert_point(pruner, log, log["batches"][1][1])
    assert not torch.equal(log["batches"][1][1]["a.weight"], log["batches"][0][1]["a.weight"])


def test_two_optimizers_step_k_inside_a_batch_is_recorded_as_the_real_step() -> None:
    """step:3 falls between the two optimizers' steps of batch 2: the end of batch 2 is step 4, and says so."""
    pruner, log, marked, told = run((1, 1), "step:3", max_steps=8, rewind_points=(5,))
    assert pruner._snapshot_step == 4 and marked == [4]  # not 3: the weights are those after step 4
    assert_point(pruner, log, log["batches"][1][1])
    assert len(told) == 2, told
    assert "from 2 to 4" in told[0] and "rewind='step:3'" in told[0] and "recorded as step 4" in told[0]
    assert "from 4 to 6" in told[1] and "rewind_points [5] are not recorded" in told[1]
    assert pruner._points == {}  # step 5 never existed between batches: nothing kept under its name


def test_manual_accumulation_counts_optimizer_steps_not_batches() -> None:
    """One optimizer stepping every 2nd batch: step:2 is the end of batch 4 (batch 3 still holds step 1)."""
    pruner, log, marked, told = run((2,), "step:2", max_steps=4)
    assert [step for step, _ in log["batches"]] == [0, 1, 1, 2, 2, 3, 3, 4]
    assert pruner._snapshot_step == 2 and marked == [2] and told == []
    assert_point(pruner, log, log["batches"][3][1])
    assert not torch.equal(log["batches"][3][1]["a.weight"], log["batches"][2][1]["a.weight"])
