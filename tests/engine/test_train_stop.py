"""The shipped trainer and the context's method hooks: total_steps set, step hooks called, a stop request honoured."""

from __future__ import annotations

from pathlib import Path

from lotteryir.engine import RestorationTrainer
from lotteryir.pruning.context import RoundContext

from .test_train import NoisyPatches, _model, _resume_config


def _stopping_ctx(tmp_path: Path, at: int, seen: list[int]) -> RoundContext:
    ctx = RoundContext(round=0, density=1.0, checkpoint_dir=tmp_path)

    def hook(k: int) -> None:
        seen.append(k)
        if k == at:
            ctx.request_stop(f"asked at step {k}")

    def load(saved: dict) -> None:
        if saved["stopped"]:
            ctx.request_stop(saved["stopped"])

    ctx.on_step(hook)
    ctx.add_state("test", lambda: {"stopped": ctx.stop_reason}, load)
    return ctx


def test_trainer_stops_when_the_context_asks_and_a_rerun_stays_stopped(tmp_path: Path) -> None:
    seen: list[int] = []
    ctx = _stopping_ctx(tmp_path, 4, seen)
    metrics = RestorationTrainer(NoisyPatches(), _resume_config())(_model(), ctx)
    total = RestorationTrainer(NoisyPatches(), _resume_config()).plan()[1]
    assert ctx.total_steps == total > 4
    assert seen == [1, 2, 3, 4] and metrics["steps"] == 4 and metrics["stopped_early"] == "asked at step 4"
    # The checkpoint at the stop holds the request: the same round run again trains no further step.
    again: list[int] = []
    rerun = _stopping_ctx(tmp_path, 4, again)
    metrics = RestorationTrainer(NoisyPatches(), _resume_config())(_model(seed=3), rerun)
    assert again == [] and metrics["steps"] == 4 and metrics["resumed_from"] == 4
