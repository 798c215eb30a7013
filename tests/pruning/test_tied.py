"""Weight-tied layers: one shared ``_orig`` keeps its pruned entries at zero through every rewind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lotteryir.pruning import IterativeMagnitudePruner

from .nets import fixed_batch


class Tied(nn.Module):
    """The same conv used twice, and a conv whose weight is aliased to another's (``a.weight = b.weight``)."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.twice = nn.Conv2d(c, c, 3, padding=1)
        self.body = nn.Sequential(self.twice, nn.ReLU(), self.twice)  # one module under three names
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 3, padding=1)
        self.b.weight = self.a.weight
        self.head = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        h = self.body(torch.relu(self.stem(x)))
        return x + self.head(self.b(torch.relu(self.a(h))))


def _origs(model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every (``<name>_orig``, ``<name>_mask``) pair of the state dict, aliases included."""
    sd = model.state_dict()
    return {k[: -len("_orig")]: (v, sd[k[: -len("_orig")] + "_mask"]) for k, v in sd.items() if k.endswith("_orig")}


def _train(steps: int = 4):
    x, y = fixed_batch()

    def train(model, ctx):
        torch.manual_seed(ctx.round)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        for k in range(1, steps + 1):
            opt.zero_grad()
            (model(x) - y).abs().mean().backward()
            opt.step()
            ctx.step(k)
        return {}

    return train


@pytest.mark.parametrize("rewind", ["init", "step:2"])
def test_pruned_entries_of_shared_orig_stay_zero_after_each_rewind(rewind):
    torch.manual_seed(0)
    model = Tied()
    train = _train()
    after_rewind: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = []

    def closure(m, ctx):
        if ctx.round >= 1:  # right after prune + rewind, before training
            after_rewind.append({k: (o.clone(), mk.clone()) for k, (o, mk) in _origs(m).items()})
        return train(m, ctx)

    pruner = IterativeMagnitudePruner(model, closure, rounds=2, rate=0.5, rewind=rewind)
    names = set(pruner.mask)
    assert "twice.weight" in names and "a.weight" in names
    assert "body.0.weight" not in names and "b.weight" not in names  # each shared weight counted once
    pruner.run()
    assert len(after_rewind) == 2
    for level, origs in enumerate(after_rewind, start=1):
        # every alias of a shared weight is in the state dict: each must hold zeros where pruned
        assert {"twice.weight", "body.0.weight", "body.2.weight", "a.weight", "b.weight"} <= set(origs)
        for key, (orig, mask) in origs.items():
            assert not mask.all(), f"{key} was not pruned at level {level}"
            pruned = orig[~mask]
            assert int(torch.count_nonzero(pruned)) == 0, f"{key}_orig: {int(torch.count_nonzero(pruned))} non-zero"
    # and after training too (the zeros are kept by every write)
    for key, (orig, mask) in _origs(model).items():
        assert int(torch.count_nonzero(orig[~mask])) == 0, key

    exported = pruner.export_state_dict()
    fresh = Tied()
    fresh.load_state_dict(exported, strict=True)
    mask = pruner.mask
    for alias, name in [("body.0.weight", "twice.weight"), ("body.2.weight", "twice.weight"), ("b.weight", "a.weight")]:
        assert torch.equal(exported[alias], exported[name])
    for name in names:
        assert torch.equal(exported[name] != 0, mask[name])  # trained survivors are non-zero, pruned are zero
    assert sum(int(torch.count_nonzero(exported[n])) for n in names) == mask.num_remaining
    x, _ = fixed_batch()
    with torch.no_grad():
        assert torch.allclose(fresh(x), model(x), atol=1e-6)


def test_controls_and_a_saved_state_keep_shared_orig_zeros(tmp_path):
    torch.manual_seed(0)
    model = Tied()
    train = _train(steps=2)
    seen: list[tuple[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]] = []

    def closure(m, ctx):
        if ctx.round >= 1:
            seen.append((ctx.kind, {k: (o.clone(), mk.clone()) for k, (o, mk) in _origs(m).items()}))
        return train(m, ctx)

    kw = dict(rounds=2, rate=0.5, controls=("random_reinit", "random_prune"), model_factory=Tied)
    pruner = IterativeMagnitudePruner(model, closure, **kw)
    pruner.run_round()
    pruner.run_round()
    assert {kind for kind, _ in seen} == {"ticket", "random_reinit", "random_prune"}
    for kind, origs in seen:
        for key, (orig, mask) in origs.items():
            assert not mask.all() and int(torch.count_nonzero(orig[~mask])) == 0, (kind, key)
    pruner.save_state(tmp_path)
    torch.manual_seed(1)
    again_model = Tied()
    again = IterativeMagnitudePruner(again_model, closure, **kw)
    again.load_state(tmp_path)
    assert again.mask == pruner.mask
    for key, (orig, _) in _origs(again_model).items():
        assert torch.equal(orig, _origs(model)[key][0]), key
    seen.clear()
    again.run_round()  # round 2 from the loaded state: prune + rewind to the saved init
    for kind, origs in seen:
        for key, (orig, mask) in origs.items():
            assert int(torch.count_nonzero(orig[~mask])) == 0, (kind, key)
