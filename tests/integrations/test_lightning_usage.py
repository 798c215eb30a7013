"""What a Lightning project does around the rounds: export the inner network, compile, log each round."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning.pytorch")

from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from lotteryir import IterativeMagnitudePruner, RoundContext  # noqa: E402
from lotteryir.integrations.lightning import PruningCallback, inner_state_dict, lightning_closure  # noqa: E402

from .lit import QUIET, NetLit, loader, published_net  # noqa: E402


@pytest.fixture
def pruned() -> tuple[NetLit, IterativeMagnitudePruner]:
    """A NetLit at density 0.5 (pruned without training: what export reads is the masks and the weights)."""
    torch.manual_seed(0)
    module = NetLit()
    pruner = IterativeMagnitudePruner(module, rate=0.5, rounds=1)
    pruner.prune()
    return module, pruner


def test_inner_state_dict_loads_strictly_into_the_published_network(pruned) -> None:
    module, pruner = pruned
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: \"net.0.weight\""):
        published_net().load_state_dict(pruner.export_state_dict())  # the LightningModule's keys
    state = inner_state_dict(module, "net")
    assert sorted(state) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    net = published_net()
    net.load_state_dict(state, strict=True)
    mask = pruner.mask
    for i in (0, 2):
        w, m = net[i].weight, mask[f"net.{i}.weight"]
        assert torch.equal(w, module.net[i].weight_orig * m)
        assert int((w == 0).sum()) == int((~m).sum()) > 0  # the pruned entries, and only they, are zero
    x = next(iter(loader()))[0]
    with torch.no_grad():
        assert torch.equal(x + net(x), module(x))
    with pytest.raises(ValueError, match=r"NetLit has no submodule 'model' \(its children: net\)"):
        inner_state_dict(module, "model")


def test_torch_compile_wrapper_is_refused_at_once_naming_the_in_place_compile() -> None:
    module, built = NetLit(), []

    def make_trainer(ctx):
        built.append(ctx.round)
        return L.Trainer(max_steps=1, enable_checkpointing=False, **QUIET)

    compiled = torch.compile(module)
    closure = lightning_closure(make_trainer, train_dataloaders=loader())
    with pytest.raises(TypeError, match=r"torch\.compile wrapper \(the model itself\).*model\.compile\(\)"):
        IterativeMagnitudePruner(compiled, closure, rounds=1)  # the core refuses it when the pruner is created
    assert built == []  # refused before any Trainer was built
    ctx = RoundContext(round=0, density=1.0)
    with pytest.raises(TypeError, match=r"module\.net\.compile\(\)"):
        PruningCallback(ctx, compiled)  # a hand-written closure: refused when the callback is built
    module.net = torch.compile(module.net)  # replacing the network by its wrapper renames it too
    with pytest.raises(TypeError, match=r"wrapped by torch\.compile \(net\)"):
        PruningCallback(ctx, module)
    with pytest.raises(TypeError, match=r"NetLit\.net is wrapped by torch\.compile"):
        inner_state_dict(module, "net")


def test_compiling_the_network_in_place_trains_the_same_weights() -> None:
    """module.net.compile() keeps every name: the rounds run and end where eager training ends."""
    ends = []
    for compile_net in (False, True):
        torch.manual_seed(0)
        module = NetLit()

        def make_trainer(ctx):
            return L.Trainer(max_steps=2, enable_checkpointing=False, **QUIET)

        closure = lightning_closure(make_trainer, train_dataloaders=loader(same=True))
        pruner = IterativeMagnitudePruner(module, closure, rate=0.5, rounds=1)
        if compile_net:
            module.net.compile(backend="eager")  # the graph is what matters here, not inductor's code
        pruner.run()
        ends.append({k: t.detach().clone() for k, t in inner_state_dict(module, "net").items()})
    assert ends[0].keys() == ends[1].keys()
    assert all(torch.allclose(ends[0][k], ends[1][k], atol=1e-6) for k in ends[0])
    assert int((ends[1]["0.weight"] == 0).sum()) == int((ends[0]["0.weight"] == 0).sum()) > 0


def steps_logged(folder: Path) -> list[int]:
    with open(folder / "metrics.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get("train_loss")]


def test_one_logger_version_per_training_keeps_rounds_apart(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = NetLit()

    def make_trainer(ctx):
        logger = CSVLogger(tmp_path, name="imp", version=f"round{ctx.round}-{ctx.kind}")
        return L.Trainer(max_steps=3, log_every_n_steps=1, logger=logger, enable_checkpointing=False, **QUIET_LOGS)

    closure = lightning_closure(make_trainer, train_dataloaders=loader())
    IterativeMagnitudePruner(module, closure, rate=0.5, rounds=1, controls=["random_prune"]).run()
    folders = sorted(p.name for p in (tmp_path / "imp").iterdir())
    assert folders == ["round0-ticket", "round1-random_prune", "round1-ticket"]
    for name in folders:
        assert steps_logged(tmp_path / "imp" / name) == [0, 1, 2]  # each training's own curve, from step 0


def test_a_logger_shared_by_the_rounds_is_named_with_the_remedy(tmp_path: Path) -> None:
    torch.manual_seed(0)
    shared = CSVLogger(tmp_path, name="imp")

    def make_trainer(ctx):
        return L.Trainer(max_steps=2, log_every_n_steps=1, logger=shared, enable_checkpointing=False, **QUIET_LOGS)

    closure = lightning_closure(make_trainer, train_dataloaders=loader())
    remedy = r"previous training's CSVLogger.*version=f'round\{ctx\.round\}-\{ctx\.kind\}'"
    with pytest.warns(UserWarning, match=remedy):
        IterativeMagnitudePruner(NetLit(), closure, rate=0.5, rounds=1).run()
    assert steps_logged(Path(shared.log_dir)) == [0, 1, 0, 1]  # what the warning is about: round 1 over round 0


QUIET_LOGS = {k: v for k, v in QUIET.items() if k != "logger"}
