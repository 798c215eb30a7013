"""``IterativeMagnitudePruner(on_step=...)``: every optimizer step of every training, with what the closure
reported, so a user's own loop can log its curves anywhere."""

from __future__ import annotations

import torch
from torch import nn

from lotteryir.engine import RestorationTrainer, TrainConfig
from lotteryir.pruning import IterativeMagnitudePruner, StepReport

from ..engine.test_train import NoisyPatches, TinyRestorer


def test_every_step_of_ticket_and_controls_reaches_on_step_with_its_metrics():
    reports: list[StepReport] = []

    def train(model, ctx):
        for k in range(1, 4):
            ctx.step(k, loss=float(10 * ctx.round + k), lr=0.1)
        return {}

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    pruner = IterativeMagnitudePruner(
        model, train, rate=0.5, rounds=2, controls=["random_prune"], on_step=reports.append
    )
    pruner.run()
    seen = [(r.round, r.kind, r.step) for r in reports]
    expected = [(0, "ticket", k) for k in (1, 2, 3)]
    for r in (1, 2):
        expected += [(r, "ticket", k) for k in (1, 2, 3)] + [(r, "random_prune", k) for k in (1, 2, 3)]
    assert seen == expected
    assert all(r.metrics == {"loss": 10 * r.round + r.step, "lr": 0.1} for r in reports)
    assert [r.density for r in reports if r.step == 1 and r.kind == "ticket"] == [1.0, 0.5, 0.25]


def test_the_shipped_trainer_reports_its_loss_and_learning_rate_per_step():
    torch.manual_seed(0)
    progress, reports = [], []
    trainer = RestorationTrainer(NoisyPatches(), TrainConfig(steps=4, batch_size=4), progress=progress.append)
    IterativeMagnitudePruner(TinyRestorer(), trainer, rate=0.5, rounds=1, on_step=reports.append).run()
    assert [(r.round, r.step) for r in reports] == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2), (1, 3), (1, 4)]
    assert [r.metrics["loss"] for r in reports] == [p.loss for p in progress]
    assert [r.metrics["lr"] for r in reports] == [p.lr for p in progress]
