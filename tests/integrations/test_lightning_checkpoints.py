"""Lightning checkpoints of a pruning round: saved mid-round, loaded weights_only, resumed bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning.pytorch")

from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402

from lotteryir import IterativeMagnitudePruner  # noqa: E402
from lotteryir.integrations.lightning import lightning_closure  # noqa: E402

from .lit import QUIET, TinyLit, loader  # noqa: E402

STEPS = 4


class Crash(L.Callback):
    """Stops the process-to-be-resumed at ``step`` (after the checkpoint of that step was written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


def closure(ckdir: Path, crash_round: int | None = None, resume=None):
    def make_trainer(ctx):
        folder = ckdir / f"round{ctx.round}"
        save = ModelCheckpoint(dirpath=folder, filename="{step}", every_n_train_steps=2, save_top_k=-1)
        callbacks = [save, *([Crash(2)] if ctx.round == crash_round else [])]
        return L.Trainer(max_steps=STEPS, callbacks=callbacks, **QUIET)

    # weights_only: the resume itself loads nothing but tensors and plain values.
    return lightning_closure(make_trainer, train_dataloaders=loader(same=True), ckpt_path=resume, weights_only=True)


def pruner_for(module: torch.nn.Module, train, rate: float = 0.5) -> IterativeMagnitudePruner:
    return IterativeMagnitudePruner(module, train, rate=rate, rounds=1, rewind="init")


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> dict:
    """An uninterrupted reference run, and a run that crashed at step 2 of round 1."""
    root = tmp_path_factory.mktemp("lightning_ckpt")
    torch.manual_seed(0)
    reference = TinyLit()
    pruner_for(reference, closure(root / "ref")).run()
    torch.manual_seed(0)
    module = TinyLit()
    pruner = pruner_for(module, closure(root / "run", crash_round=1))
    pruner.run_round()
    pruner.save_state(root / "pruner")
    with pytest.raises(RuntimeError, match="simulated crash"):
        pruner.run_round()
    return {"root": root, "reference": reference, "ckpt": root / "run" / "round1" / "step=2.ckpt"}


def test_checkpoint_holds_masks_and_round_state_and_loads_weights_only(crashed) -> None:
    ckpt = torch.load(crashed["ckpt"], map_location="cpu", weights_only=True)  # no pickled objects of ours
    assert {"a.weight_orig", "a.weight_mask", "b.weight_orig", "b.weight_mask"} <= set(ckpt["state_dict"])
    assert ckpt["state_dict"]["a.weight_mask"].dtype == torch.bool
    assert 0 < ckpt["state_dict"]["a.weight_mask"].float().mean() < 1
    state = ckpt["callbacks"]["lotteryir.PruningCallback"]
    assert (state["round"], state["kind"], state["step"]) == (1, "ticket", 2)
    round0 = torch.load(crashed["root"] / "run" / "round0" / "step=2.ckpt", weights_only=True)
    # Round 0's state says which tensors got gradients: a resumed round 0 prunes the same ones.
    assert round0["callbacks"]["lotteryir.PruningCallback"]["round_state"] == {"grad_seen": ["a.weight", "b.weight"]}


def test_mid_round_checkpoint_resumes_into_a_masked_module(crashed) -> None:
    """A new process: fresh module, the pruner's state after round 0, round 1 resumed from its step-2 checkpoint."""
    torch.manual_seed(1)  # other initial weights: everything must come from the saved state and checkpoint
    module = TinyLit()
    resume = lambda ctx: crashed["ckpt"] if ctx.round == 1 else None  # noqa: E731
    pruner = pruner_for(module, closure(crashed["root"] / "resumed", resume=resume))
    pruner.load_state(crashed["root"] / "pruner")
    record = pruner.run_round()
    assert record.round == 1 and record.metrics["steps"] == STEPS
    reference = crashed["reference"].state_dict()
    for key, value in module.state_dict().items():
        assert torch.equal(value, reference[key]), key  # bit for bit the uninterrupted run
    assert torch.all(module.a.weight_orig[~module.a.weight_mask] == 0)


def test_checkpoint_of_another_round_is_refused(crashed) -> None:
    torch.manual_seed(0)
    module = TinyLit()
    pruner = pruner_for(module, closure(crashed["root"] / "other", resume=lambda ctx: crashed["ckpt"]))
    with pytest.raises(ValueError, match="saved in round 1 .* cannot resume round 0"):
        pruner.run_round()


def test_checkpoint_with_other_masks_is_refused(crashed) -> None:
    torch.manual_seed(0)
    module = TinyLit()
    resume = lambda ctx: crashed["ckpt"] if ctx.round == 1 else None  # noqa: E731
    pruner = pruner_for(module, closure(crashed["root"] / "masks", resume=resume), rate=0.25)
    pruner.run_round()
    with pytest.raises(ValueError, match="other masks than the pruner's"):
        pruner.run_round()


def test_checkpoint_without_lotteryir_state_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = TinyLit()
    path = tmp_path / "plain.ckpt"
    pruner = pruner_for(module, closure(tmp_path / "c", resume=lambda ctx: path))
    plain = L.Trainer(max_steps=1, enable_checkpointing=False, **QUIET)
    plain.fit(module, loader())  # the pruner's masks are attached, but no PruningCallback ran
    plain.save_checkpoint(path)
    with pytest.raises(ValueError, match="holds no lotteryir state"):
        pruner.run_round()


def test_round0_resumed_before_step_k_takes_the_same_snapshot(tmp_path: Path) -> None:
    """The resumed fit counts on from the checkpoint's global step: ctx.step(3) comes after resuming at 2."""

    def round0(folder: str, crash: bool = False, resume=None) -> IterativeMagnitudePruner:
        torch.manual_seed(0)
        train = closure(tmp_path / folder, crash_round=0 if crash else None, resume=resume)
        pruner = IterativeMagnitudePruner(TinyLit(), train, rate=0.5, rounds=1, rewind="step:3")
        if crash:
            with pytest.raises(RuntimeError, match="simulated crash"):
                pruner.run_round()
        else:
            pruner.run_round()
        return pruner

    reference = round0("ref")
    round0("run", crash=True)
    resumed = round0("resumed", resume=lambda ctx: tmp_path / "run" / "round0" / "step=2.ckpt")
    assert reference._snapshot_step == resumed._snapshot_step == 3
    for key, value in reference._snapshot.items():
        assert torch.equal(resumed._snapshot[key], value), key
    assert resumed._watch.seen == {"a.weight", "b.weight"}
