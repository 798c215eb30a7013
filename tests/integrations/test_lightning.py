"""lotteryir.integrations.lightning: IMP rounds as Trainer.fit calls of a small LightningModule, on CPU."""

from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

L = pytest.importorskip("lightning.pytorch")

from lotteryir import IterativeMagnitudePruner, RoundContext  # noqa: E402
from lotteryir.integrations.lightning import PruningCallback, lightning_closure, module_mask  # noqa: E402
from lotteryir.pruning import effective_weights  # noqa: E402
from lotteryir.pruning.rewind import named_tensors  # noqa: E402

from .lit import QUIET, TinyLit, loader  # noqa: E402

WEIGHTS = ("a.weight", "b.weight")


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: t.detach().clone() for k, t in named_tensors(module).items()}


class Recorder(L.Callback):
    """Weights and masks at the start and end of each fit, and after every optimizer step of round 0."""

    def __init__(self, log: dict[str, Any], r: int) -> None:
        self.rec, self.r = log, r

    def on_train_start(self, trainer, pl_module) -> None:
        self.rec["start"][self.r] = snapshot(pl_module)
        self.rec["mask"][self.r] = {k: m.clone() for k, m in module_mask(pl_module).items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.rec["batches"].setdefault(self.r, 0)
        self.rec["batches"][self.r] += 1
        if self.r == 0:
            self.rec["steps"].setdefault(trainer.global_step, snapshot(pl_module))

    def on_train_end(self, trainer, pl_module) -> None:
        self.rec["end"][self.r] = snapshot(pl_module)


def assert_pruned_are_zero(pruner: IterativeMagnitudePruner, module: torch.nn.Module) -> None:
    mask = pruner.mask
    for name, w in effective_weights(pruner.params).items():
        assert torch.all(w[~mask[name]] == 0), name
    x = next(iter(loader()))[0].to(next(module.parameters()).dtype)
    module(x)  # after a forward: the attribute the network computes with
    for name in WEIGHTS:
        layer = getattr(module, name.split(".")[0])
        assert torch.all(layer.weight[~mask[name]] == 0), name


def run(rewind: str, steps: int = 4, accumulate: int = 1, precision: str = "32-true") -> tuple:
    """Round 0 and two pruning rounds of TinyLit, with gradient clipping, AdamW weight decay."""
    torch.manual_seed(0)
    module = TinyLit()
    log: dict[str, Any] = {"init": snapshot(module), "start": {}, "end": {}, "mask": {}, "steps": {}, "batches": {}}

    def make_trainer(ctx):
        return L.Trainer(
            max_steps=steps,
            accumulate_grad_batches=accumulate,
            gradient_clip_val=0.05,  # clips w_orig's gradients; the effective zeros must stay
            precision=precision,
            enable_checkpointing=False,
            callbacks=[Recorder(log, ctx.round)],
            **QUIET,
        )

    closure = lightning_closure(make_trainer, train_dataloaders=loader())
    pruner = IterativeMagnitudePruner(module, closure, rate=0.5, rounds=2, rewind=rewind)
    records = []
    for record in pruner.iter_rounds():
        assert_pruned_are_zero(pruner, module)
        records.append(record)
    return pruner, module, log, records


def assert_rewound(log: dict[str, Any], point: dict[str, torch.Tensor]) -> None:
    """Every round >= 1 started from ``point`` bit for bit: survivors (pruned entries zero) and the rest."""
    for r in (1, 2):
        mask = log["mask"][r]
        assert 0 < sum(int(m.sum()) for m in mask.values()) < sum(m.numel() for m in mask.values())
        for key, value in point.items():
            expected = value * mask[key] if key in WEIGHTS else value
            assert torch.equal(log["start"][r][key].to(value.dtype), expected), (r, key)
        assert not torch.equal(log["end"][r]["a.weight"], log["start"][r]["a.weight"])  # and trained


def test_rewind_to_init_two_rounds() -> None:
    pruner, module, log, records = run("init")
    assert [round(r.density, 4) for r in records] == [1.0, 0.5, 0.25]
    assert [r.metrics["steps"] for r in records] == [4, 4, 4] and "train_loss" in records[0].metrics
    assert_rewound(log, log["init"])
    assert not torch.equal(log["end"][0]["a.weight"], log["init"]["a.weight"])


def test_rewind_to_step_k_counts_optimizer_steps_under_accumulation() -> None:
    pruner, module, log, records = run("step:3", steps=4, accumulate=2)
    assert log["batches"][0] == 8  # 4 optimizer steps of 2 batches each
    assert pruner._snapshot_step == 3
    assert_rewound(log, log["steps"][3])  # the weights after the 3rd optimizer step, i.e. the 6th batch
    assert not torch.equal(log["steps"][3]["a.weight"], log["steps"][2]["a.weight"])


def test_double_precision_converts_the_masked_module() -> None:
    """precision='64-true' converts the module inside fit: masks stay bool buffers, hooks survive."""
    pruner, module, log, records = run("init", precision="64-true")
    assert module.a.weight_orig.dtype == torch.float64 and module.a.weight_mask.dtype == torch.bool
    assert_rewound(log, log["init"])  # float32 init -> float64 is exact


def test_bf16_mixed_keeps_zeros() -> None:
    pruner, module, log, records = run("init", precision="bf16-mixed")
    assert round(records[-1].density, 4) == 0.25


def test_closure_refuses_what_it_cannot_drive() -> None:
    ctx = RoundContext(round=0, density=1.0)
    with pytest.raises(TypeError, match="ckpt_path must be a function"):
        lightning_closure(lambda c: None, ckpt_path="last.ckpt")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LightningModule itself"):
        lightning_closure(lambda c: None)(torch.nn.Conv2d(3, 3, 1), ctx)
    with pytest.raises(TypeError, match=r"expected a lightning\.pytorch\.Trainer"):
        lightning_closure(lambda c: object())(TinyLit(), ctx)  # type: ignore[arg-type, return-value]
    trainer = L.Trainer(max_steps=1, enable_checkpointing=False, **QUIET)
    same = lightning_closure(lambda c: trainer, train_dataloaders=loader())
    assert same(TinyLit(), ctx)["steps"] == 1
    with pytest.raises(ValueError, match="build a new one every round"):
        same(TinyLit(), RoundContext(round=1, density=0.5))


def test_callback_refuses_a_copy_and_lost_hooks() -> None:
    """Your own closure may add PruningCallback itself; it refuses to train what the pruner does not hold."""
    torch.manual_seed(0)
    module = TinyLit()
    IterativeMagnitudePruner(module, rate=0.5, rounds=1)
    ctx = RoundContext(round=0, density=1.0)

    def fit(target: torch.nn.Module) -> None:
        trainer = L.Trainer(max_steps=1, enable_checkpointing=False, callbacks=[PruningCallback(ctx, module)], **QUIET)
        trainer.fit(target, loader())

    with pytest.raises(RuntimeError, match="another module than the pruner's"):
        fit(copy.deepcopy(module))
    module.a._forward_pre_hooks.clear()  # what a strategy that rebuilds modules would leave
    with pytest.raises(RuntimeError, match=r"masks did not survive SingleDeviceStrategy's setup \(a.weight\)"):
        fit(module)


@settings(max_examples=60, deadline=None)
@given(moves=st.lists(st.integers(0, 3), max_size=30), k=st.integers(1, 40))
def test_every_optimizer_step_is_reported_once_in_order(moves: list[int], k: int) -> None:
    """However global_step advances between batch ends (0 while accumulating, several optimizers: more than
    1), ctx sees 1, 2, 3, ... once; a rewind step is snapshot at the end of the batch that reaches it, recorded
    as that batch's step and with a warning when the batch stepped past it; a kept step passed inside a batch
    is not recorded."""
    marks: list = []
    ctx = RoundContext(round=0, density=1.0, rewind_step=k, rewind_steps=(2,), _on_mark=marks.append)
    callback, trainer, reported = PruningCallback(ctx), SimpleNamespace(global_step=0), []
    original = ctx.step
    ctx.step = lambda n, **metrics: (reported.append(n), original(n, **metrics))  # type: ignore[method-assign]
    ends = []  # global_step at each batch end
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for move in moves:
            trainer.global_step += move
            ends.append(trainer.global_step)
            callback.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    total = sum(moves)
    assert reported == list(range(1, total + 1)) and ctx.steps_done == total
    expected = []  # in time order: both lists are sorted by the step
    for target in sorted({2, k}):
        end = next((e for e in ends if e >= target), None)
        if end == target or (end is not None and target == k):
            expected.append(end)
    assert marks == expected
    inside = {t for t in (2, k) if any(a < t < b for a, b in zip([0, *ends], ends, strict=False))}
    assert len(caught) == len({b for a, b in zip([0, *ends], ends, strict=False) if any(a < t < b for t in inside)})
    assert ctx.rewind_step == k and ctx.rewind_steps == (2,)  # left as they were
    assert callback.state_dict()["step"] == total


def test_on_step_gets_lightnings_loss_and_learning_rate_for_every_optimizer_step():
    torch.manual_seed(0)
    module, reports = TinyLit(), []

    def make_trainer(ctx):
        return L.Trainer(max_steps=3, accumulate_grad_batches=2, enable_checkpointing=False, **QUIET)

    closure = lightning_closure(make_trainer, train_dataloaders=loader())
    IterativeMagnitudePruner(module, closure, rate=0.5, rounds=1, on_step=reports.append).run()
    assert [(r.round, r.step) for r in reports] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    assert all(set(r.metrics) == {"loss", "lr"} and r.metrics["loss"] > 0 for r in reports)
