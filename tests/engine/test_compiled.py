"""``TrainConfig.compile`` / ``prune --compile``: compiled once, reused by every round, same training."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.utils import counters

from lotteryir.engine import RestorationTrainer, TrainConfig
from lotteryir.pruning import IterativeMagnitudePruner

from .test_train import NoisyPatches, TinyRestorer

# aot_eager traces forward and backward as inductor does, without minutes of C++ code generation.
BACKEND = "aot_eager"


def _search(compile_: bool | str) -> tuple[IterativeMagnitudePruner, list[int], list[float]]:
    torch.manual_seed(0)
    model = TinyRestorer()
    trainer = RestorationTrainer(NoisyPatches(), TrainConfig(steps=3, batch_size=4, lr=1e-2, compile=compile_))
    graphs, losses = [], []

    def train(m, ctx):
        result = trainer(m, ctx)
        graphs.append(counters["stats"]["unique_graphs"])
        losses.append(result["loss"])
        return result

    pruner = IterativeMagnitudePruner(model, train, rate=0.5, rounds=2)
    pruner.run()
    return pruner, graphs, losses


def test_compiled_training_reuses_round_0s_graphs_and_keeps_pruned_weights_zero():
    torch._dynamo.reset()
    counters.clear()
    pruner, graphs, losses = _search(BACKEND)
    assert graphs[0] >= 1  # round 0 compiled the forward
    assert graphs[1] == graphs[0] == graphs[2]  # pruning rounds changed mask values only: no new graph
    for name, keep in pruner.mask.items():
        module_name, _, attr = name.rpartition(".")
        weight = getattr(pruner.model.get_submodule(module_name), attr)
        assert torch.count_nonzero(weight[~keep]) == 0, name
    _, _, eager = _search(False)
    assert losses == pytest.approx(eager, rel=1e-4)  # the same training, compiled


def test_compile_option_is_checked():
    with pytest.raises(ValueError, match="compile"):
        TrainConfig(compile="")
    with pytest.raises(ValueError, match="compile"):
        TrainConfig(compile=3)  # type: ignore[arg-type]


def test_prune_compile_compiles_the_run_once_and_is_operational(tmp_path, monkeypatch):
    import json

    from lotteryir.cli import main

    from ..tiny_run import TINY_ARGS

    calls = []
    real = torch.compile

    def counting(model, **kwargs):
        calls.append(type(model).__name__)
        return real(model, **{"backend": BACKEND, **kwargs})

    monkeypatch.setattr(torch, "compile", counting)
    out = tmp_path / "run"
    at = TINY_ARGS.index("--rounds")
    args = TINY_ARGS[:at] + TINY_ARGS[at + 2 :]
    assert main(["prune", *args, "--rounds", "1", "--compile", "--out", str(out)]) == 0
    assert calls == ["PromptIR"]  # one model, compiled once for both rounds
    assert json.loads((out / "config.json").read_text())["compile"] is True
    # How a run trains, not what it finds: it may continue without --compile.
    assert main(["prune", *args, "--rounds", "2", "--out", str(out)]) == 0
    assert calls == ["PromptIR"]
