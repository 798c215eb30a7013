"""Pruning methods through the Python API, on a two-layer conv net: exact densities, zeros, schedules."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lotteryir.pruning import IterativeMagnitudePruner, RoundContext, bridge, effective_weights
from lotteryir.pruning.methods import METHODS, EarlyBird, GradualMagnitude, Snip, SynFlow, cubic_sparsity, get_method


class TwoConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))


N = 3 * 8 * 9 + 8 * 3 * 9  # prunable weights of TwoConv


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=g)
    return x, (x * 0.5).clamp(0, 1)


def closure(steps: int = 12, log: list | None = None):
    """AdamW for ``steps`` steps; reports each step, sets total_steps, honours a stop request."""
    x, y = _batch()

    def train(model: nn.Module, ctx: RoundContext) -> dict:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        ctx.total_steps = steps
        k = 0
        for k in range(1, steps + 1):
            opt.zero_grad()
            (model(x) - y).abs().mean().backward()
            opt.step()
            ctx.step(k)
            if log is not None:
                log.append((ctx.round, k, _density(model)))
            if ctx.stop_requested:
                break
        return {"steps": k}

    return train


def _density(model: nn.Module) -> float:
    masks = [b for n, b in model.named_buffers() if n.endswith("weight_mask")]
    return float(sum(int(m.sum()) for m in masks)) / sum(m.numel() for m in masks)


def _survivors(pruner: IterativeMagnitudePruner) -> int:
    return pruner.mask.num_remaining


def _zeros_hold(pruner: IterativeMagnitudePruner) -> None:
    weights = effective_weights(pruner.params)
    for name, m in pruner.mask.items():
        assert torch.all(weights[name][~m] == 0), name


def _snip_loss(model: nn.Module) -> torch.Tensor:
    x, y = _batch()
    return (model(x) - y).abs().mean()


def _pruner(method, target=0.1, **kw) -> IterativeMagnitudePruner:
    torch.manual_seed(0)
    kw.setdefault("train", closure())
    return IterativeMagnitudePruner(TwoConv(), target_density=target, method=method, **kw)


def test_registry_names_every_method():
    assert set(METHODS) == {"imp", "lr-rewind", "oneshot", "gmp", "early-bird", "snip", "synflow"}
    with pytest.raises(ValueError, match="unknown pruning method 'nope'"):
        get_method("nope")
    with pytest.raises(ValueError, match="has no option every"):
        get_method("oneshot", every=3)


def test_imp_default_unchanged_and_lr_rewind_is_imp_without_rewind():
    torch.manual_seed(0)
    a = IterativeMagnitudePruner(TwoConv(), closure(), rounds=2, rewind="none")
    torch.manual_seed(0)
    b = IterativeMagnitudePruner(TwoConv(), closure(), rounds=2, method="lr-rewind")
    assert "method" not in a.config() and b.config()["method"] == {"name": "lr-rewind"}
    assert str(b.rewind_spec) == "none"
    a.run(), b.run()
    assert a.mask == b.mask
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    with pytest.raises(ValueError, match="lr-rewind"):
        IterativeMagnitudePruner(TwoConv(), rounds=1, method="lr-rewind", rewind="step:2")


@pytest.mark.parametrize("rewind", ["init", "step:3", "none"])
def test_oneshot_reaches_target_exactly_in_two_trainings(rewind):
    calls: list[int] = []
    inner = closure()

    def train(model, ctx):
        calls.append(ctx.round)
        return inner(model, ctx)

    p = _pruner("oneshot", target=0.1, train=train, rewind=rewind)
    init = {n: t.clone() for n, t in effective_weights(p.params).items()}
    p.run_round()
    trained = {n: t.clone() for n, t in effective_weights(p.params).items()}
    p.method.before_round(p, 1)  # the pruning alone, before round 1 trains
    after = effective_weights(p.params)
    kept = p.mask
    assert kept.num_remaining == round(0.1 * N)
    source = trained if rewind == "none" else init if rewind == "init" else None
    if source is not None:
        for n, m in kept.items():
            assert torch.equal(after[n][m], source[n][m])


def test_oneshot_run_records_and_zeros():
    p = _pruner("oneshot", target=0.2)
    history = p.run()
    assert [h.round for h in history] == [0, 1] and p.finished
    assert history[1].remaining == round(0.2 * N) and history[1].metrics["method"]["name"] == "oneshot"
    _zeros_hold(p)
    with pytest.raises(ValueError, match="extend"):
        _pruner("gmp").extend(1)
    with pytest.raises(ValueError, match="target_density"):
        IterativeMagnitudePruner(TwoConv(), rounds=3, method="oneshot")


@given(t=st.integers(0, 200), start=st.integers(0, 50), span=st.integers(1, 100), final=st.floats(0.01, 0.99))
@settings(max_examples=60, deadline=None)
def test_cubic_schedule_is_monotone_and_hits_its_ends(t, start, span, final):
    end = start + span
    s, s_next = cubic_sparsity(t, start, end, final), cubic_sparsity(t + 1, start, end, final)
    assert 0.0 <= s <= s_next <= final + 1e-12
    assert cubic_sparsity(start, start, end, final) == 0.0 and cubic_sparsity(end, start, end, final) == final


def test_gmp_prunes_during_one_training_to_the_target():
    log: list = []
    p = _pruner(GradualMagnitude(start=2, end=10, every=2), target=0.1, train=closure(12, log))
    history = p.run()
    assert len(history) == 1 and p.finished
    assert _survivors(p) == round(0.1 * N)
    densities = [d for _, _, d in log]
    assert densities == sorted(densities, reverse=True)  # sparsity never falls
    assert densities[0] == 1.0 and densities[-1] == pytest.approx(round(0.1 * N) / N)
    facts = history[0].metrics["method"]
    assert [u[0] for u in facts["updates"]] == [2, 4, 6, 8, 10] and facts["reached_end"]
    _zeros_hold(p)
    for param in p.params:  # AdamW's momentum moved them after their update; the round's end zeroes them
        assert torch.all(bridge.trainable_tensor(param)[~p.mask[param.name]] == 0)


def test_gmp_never_brings_a_pruned_weight_back():
    # Between updates the optimizer's momentum moves pruned entries of weight_orig (their gradient is zero,
    # their momentum is not). Here one grows larger than every survivor before the next update: each
    # update prunes among the survivors only, so it stays pruned.
    p = _pruner(GradualMagnitude(start=0, end=8, every=2), target=0.2)
    ctx = p._context(0, 1.0)
    p.method.during_round(p, ctx)
    ctx.step(1), ctx.step(2)
    first = p.mask.clone()
    assert first.num_remaining == 232  # round((1 - 0.4625) * 432)
    a = bridge.trainable_tensor(p.params[0])
    gone = int(torch.nonzero(~first["a.weight"].flatten())[0])
    with torch.no_grad():
        a.view(-1)[gone] = 100.0
    ctx.step(3), ctx.step(4)
    assert p.mask.num_remaining == 130 and not bool(p.mask["a.weight"].flatten()[gone])
    assert all(not bool((p.mask[n] & ~first[n]).any()) for n in first)


def test_gmp_default_schedule_reads_the_round_length():
    p = _pruner("gmp", target=0.3, train=closure(20))
    facts = p.run()[0].metrics["method"]
    assert (facts["start"], facts["end"], facts["every"]) == (0, 15, 1)
    assert _survivors(p) == round(0.3 * N)


def test_gmp_resumed_mid_round_matches_uninterrupted():
    """The masks live in weight_mask buffers: a state dict taken mid-round carries them."""
    ref = _pruner(GradualMagnitude(start=0, end=8, every=2), target=0.2, train=closure(10))
    ref.run()
    # Interrupted: train 5 steps, keep the model's state and the context's, resume in a fresh pruner.
    x, y = _batch()

    def part(model, ctx, first, last, opt_state=None):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        ctx.total_steps = 10
        for k in range(first, last + 1):
            opt.zero_grad()
            (model(x) - y).abs().mean().backward()
            opt.step()
            ctx.step(k)
        return opt.state_dict()

    saved: dict = {}

    def first_half(model, ctx):
        saved["opt"] = part(model, ctx, 1, 5)
        saved["model"] = {k: v.clone() for k, v in model.state_dict().items()}
        saved["ctx"] = ctx.state_dict()
        raise KeyboardInterrupt

    a = _pruner(GradualMagnitude(start=0, end=8, every=2), target=0.2, train=first_half)
    with pytest.raises(KeyboardInterrupt):
        a.run()

    def second_half(model, ctx):
        model.load_state_dict(saved["model"])
        ctx.load_state_dict(saved["ctx"])
        part(model, ctx, 6, 10, saved["opt"])
        return {"steps": 10}

    b = _pruner(GradualMagnitude(start=0, end=8, every=2), target=0.2, train=second_half)
    b.run()
    assert b.mask == ref.mask
    assert b.history[0].metrics["method"]["updates"] == ref.history[0].metrics["method"]["updates"]
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


@pytest.mark.parametrize("method", [Snip(loss_fn=_snip_loss), SynFlow(input_shape=(1, 3, 8, 8), iterations=5)])
def test_at_init_methods_prune_before_the_one_training(method):
    log: list = []
    p = _pruner(method, target=0.1, train=closure(4, log))
    history = p.run()
    assert len(history) == 1 and log[0][2] == pytest.approx(round(0.1 * N) / N)  # pruned before step 1
    assert _survivors(p) == round(0.1 * N) and history[0].metrics["method"]["name"] == method.name
    _zeros_hold(p)


def test_snip_keeps_the_largest_saliencies():
    p = _pruner(Snip(loss_fn=_snip_loss), target=0.25)
    torch.manual_seed(0)
    model = TwoConv()  # the pruner's network as it was built
    _snip_loss(model).backward()
    saliency = torch.cat([(m.weight.grad * m.weight).abs().flatten() for m in (model.a, model.b)])
    p.method.before_round(p, 0)
    kept = torch.cat([p.mask[n].flatten() for n in ("a.weight", "b.weight")])
    assert saliency[kept].min() >= saliency[~kept].max()


def test_shuffle_within_layers_keeps_each_layers_density():
    a = _pruner(Snip(loss_fn=_snip_loss), target=0.2)
    b = _pruner(Snip(loss_fn=_snip_loss, shuffle=True), target=0.2)
    a.method.before_round(a, 0), b.method.before_round(b, 0)
    assert a.mask.remaining() == b.mask.remaining() and a.mask != b.mask
    assert b.config()["method"] == {"name": "snip", "shuffle": True}


def test_synflow_needs_its_input_shape_and_snip_its_loss():
    with pytest.raises(ValueError, match="input_shape"):
        _pruner("synflow")  # refused when built, before any training
    with pytest.raises(ValueError, match="loss_fn"):
        _pruner("snip")
    with pytest.raises(ValueError, match="controls"):
        _pruner("gmp", controls=["random_prune"])


def test_early_bird_stops_when_masks_settle_and_records_where():
    log: list = []
    method = EarlyBird(every=2, epsilon=0.5, patience=2)
    p = _pruner(method, target=0.2, train=closure(40, log))
    history = p.run()
    facts = history[0].metrics["method"]
    stop = facts["stopped_at"]
    assert stop is not None and stop < 40 and stop % 2 == 0
    assert history[0].metrics["steps"] == stop == max(k for r, k, _ in log if r == 0)
    assert all(d < 0.5 for _, d in facts["distances"][-2:]) and len(facts["distances"]) >= 2
    assert max(k for r, k, _ in log if r == 1) == 40  # the ticket trains a full round
    assert history[1].remaining == round(0.2 * N)
    _zeros_hold(p)


def test_early_bird_does_not_stop_before_a_late_rewind_step():
    p = _pruner(EarlyBird(every=1, epsilon=0.5, patience=1), target=0.2, train=closure(30), rewind="step:12")
    history = p.run()
    assert history[0].metrics["method"]["stopped_at"] == 12 and history[1].rewind == "step:12"


def test_early_bird_without_convergence_trains_round0_to_the_end():
    p = _pruner(EarlyBird(every=2, epsilon=1e-9, patience=3), target=0.2, train=closure(8))
    history = p.run()
    assert history[0].metrics["method"]["stopped_at"] is None and history[0].metrics["steps"] == 8


def test_early_bird_resumes_its_checks():
    """The context's state (last mask, distances) survives a checkpoint: a resumed search stops alike."""
    p = _pruner(EarlyBird(every=1, epsilon=0.5, patience=3), target=0.2, train=closure(30))
    ctx = p._context(0, 1.0)
    p.method.during_round(p, ctx)
    ctx.step(1), ctx.step(2)
    saved = ctx.state_dict()["early_bird"]
    q = _pruner(EarlyBird(every=1, epsilon=0.5, patience=3), target=0.2, train=closure(30))
    ctx2 = q._context(0, 1.0)
    q.method.during_round(q, ctx2)
    ctx2.load_state_dict({"early_bird": saved})
    assert q.method.distances == p.method.distances and torch.equal(q.method._last, p.method._last)


def _set_weights(p: IterativeMagnitudePruner, swapped: int) -> None:
    """a's 216 weights 1..216, b's 217..432, then the first ``swapped`` of each trade places (large in a, tiny in b)."""
    a, b = (bridge.trainable_tensor(q) for q in p.params)
    with torch.no_grad():
        a.copy_(torch.arange(1.0, 217.0).reshape(a.shape))
        b.copy_(torch.arange(217.0, 433.0).reshape(b.shape))
        a.view(-1)[:swapped] = 1000.0 + torch.arange(float(swapped))
        b.view(-1)[:swapped] = 0.001 * (1.0 + torch.arange(float(swapped)))


def test_early_bird_distance_and_patience_on_known_masks():
    # The density-0.5 mask keeps the 216 largest weights: all of b, then `swapped` of a in place of b's.
    # Swapping 0, 10, 40, 45, 50 entries, consecutive masks differ in 2 x 10, 2 x 30, 2 x 5, 2 x 5 of the
    # 432 entries. With epsilon 0.1 and patience 2, the distance 60/432 = 0.139 resets the count, so
    # the search stops at step 5, not 3.
    p = _pruner(EarlyBird(every=1, epsilon=0.1, patience=2), target=0.5)
    ctx = p._context(0, 1.0)
    p.method.during_round(p, ctx)
    for k, swapped in enumerate((0, 10, 40, 45, 50), start=1):
        _set_weights(p, swapped)
        assert not ctx.stop_requested, k
        ctx.step(k)
    assert p.method.distances == [[2, 20 / 432], [3, 60 / 432], [4, 10 / 432], [5, 10 / 432]]
    assert p.method.stopped_at == 5 and ctx.stop_requested


def _zero_last(model: TwoConv) -> TwoConv:
    with torch.no_grad():  # as --init identity does: the residual network starts as the identity
        model.b.weight.zero_()
        model.b.bias.zero_()
    return model


@pytest.mark.parametrize("method", [Snip(loss_fn=_snip_loss), SynFlow(input_shape=(1, 3, 8, 8), iterations=5)])
def test_at_init_scores_have_signal_when_the_last_layer_starts_at_zero(method):
    # With b at zero every |g * w| is zero (b's own w, and a's gradient, which b blocks): positional
    # tie-breaking used to empty a whole tensor. Scored on a copy with b redrawn, both layers keep
    # weights, the training's network keeps its zero b and the global RNG does not move.
    torch.manual_seed(0)
    p = IterativeMagnitudePruner(_zero_last(TwoConv()), target_density=0.1, method=method, train=closure())
    rng = torch.get_rng_state()
    p.method.before_round(p, 0)
    assert torch.equal(torch.get_rng_state(), rng)
    kept = p.mask.remaining()
    assert sum(kept.values()) == round(0.1 * N)
    assert kept["a.weight"] > 0 and kept["b.weight"] > 0
    assert not p.model.b.weight.any()
    # a's kept weights are its most salient on the scoring copy, not its first or last entries
    a_mask = p.mask["a.weight"].reshape(-1)
    first, last = a_mask[: kept["a.weight"]], a_mask[-kept["a.weight"] :]
    assert not bool(first.all()) and not bool(last.all())
    assert p.method.unscored == []


def test_equal_scores_are_broken_at_random_not_by_position():
    # All scores zero: the positional tie-break kept only the last entries in parameter order (a
    # emptied first); the seeded random order leaves each tensor near the global density.
    p = _pruner(Snip(loss_fn=lambda m: sum(t.sum() for t in m.parameters()) * 0.0), target=0.5)
    p.method.before_round(p, 0)
    kept = p.mask.remaining()
    assert sum(kept.values()) == round(0.5 * N)
    for name, m in p.mask.items():
        assert 0.3 < kept[name] / m.numel() < 0.7, name
    again = _pruner(Snip(loss_fn=lambda m: sum(t.sum() for t in m.parameters()) * 0.0), target=0.5)
    again.method.before_round(again, 0)
    assert again.mask == p.mask  # seeded: the same run draws the same order


def test_tensors_without_a_gradient_are_listed_as_unscored():
    class Unused(TwoConv):
        def __init__(self) -> None:
            super().__init__()
            self.spare = nn.Conv2d(3, 3, 1)  # never called by forward

    torch.manual_seed(0)
    p = IterativeMagnitudePruner(Unused(), target_density=0.3, method=Snip(loss_fn=_snip_loss), train=closure())
    p.method.before_round(p, 0)
    assert p.method.unscored == ["spare.weight"]
    assert p.mask.remaining()["spare.weight"] == 0  # pruned first: it computes nothing


class Chain(nn.Module):
    """Two bias-free linear layers, 2 -> 2 -> 1, with weights chosen so that SynFlow's |w| changes the ranking."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2, bias=False)
        self.b = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[4.0, -3.0], [1.0, 0.5]]))
            self.b.weight.copy_(torch.tensor([[1.0, 2.5]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_synflow_scores_the_linearised_network():
    # R = 1' |b| |a| 1, score |dR/dw * w|: a's row j scores |a_ji| |b_j| -> 4, 3 / 2.5, 1.25; b's entry j
    # scores |b_j| (|a_j0| + |a_j1|) -> 7, 3.75. Keeping 3 of 6: b_0 (7), a_00 (4), b_1 (3.75).
    # Signed weights would give b_0 |1 * (4 - 3)| = 1 and keep a_00, b_1 and a_01 (3) instead.
    p = IterativeMagnitudePruner(Chain(), target_density=0.5, method=SynFlow(input_shape=(1, 2), iterations=1))
    p.method.before_round(p, 0)
    assert p.mask["a.weight"].tolist() == [[True, False], [False, False]]
    assert p.mask["b.weight"].tolist() == [[True, True]]
    assert p.model.a.weight.tolist() == [[4.0, 0.0], [0.0, 0.0]]  # the real network keeps its signs


class Wide(nn.Module):
    """Two 8 x 8 linear layers (128 prunable weights) that count, at every forward, the weights they use."""

    seen: list[int] = []  # a class attribute: SynFlow scores a deep copy, whose forward records here too

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8, bias=False)
        self.b = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.b(torch.relu(self.a(x)))
        Wide.seen.append(int(torch.count_nonzero(self.a.weight)) + int(torch.count_nonzero(self.b.weight)))
        return out


def test_synflow_prunes_iteratively_on_the_exponential_schedule():
    # 4 iterations to density 1/16: iteration i prunes to (1/16)^(i/4), so the forwards of iterations
    # 1-4 see 128, 64, 32, 16 weights and the mask keeps 8. Pruning in one shot would score 128, 8, 8, 8.
    torch.manual_seed(0)
    Wide.seen = []
    p = IterativeMagnitudePruner(Wide(), target_density=1 / 16, method=SynFlow(input_shape=(1, 8), iterations=4))
    p.method.before_round(p, 0)
    assert Wide.seen == [128, 64, 32, 16]
    assert p.mask.num_remaining == 8


def test_gmp_sparsity_at_named_steps_is_zhu_and_gupta_cubic():
    # s_t = 0.8 (1 - (1 - t/8)^3) from t = 0 to 8: 0.4625, 0.7, 0.7875, 0.8 at steps 2, 4, 6, 8 (a
    # linear ramp would give 0.2, 0.4, 0.6, 0.8). Of N = 432 weights the masks keep round((1 - s) N).
    assert [cubic_sparsity(t, 0, 8, 0.8) for t in (0, 2, 4, 6, 8, 9)] == pytest.approx(
        [0.0, 0.4625, 0.7, 0.7875, 0.8, 0.8]
    )
    assert cubic_sparsity(15, 10, 20, 0.5) == pytest.approx(0.4375)  # halfway: 1 - 1/8 of the final sparsity
    p = _pruner(GradualMagnitude(start=0, end=8, every=2), target=0.2, train=closure(10))
    updates = p.run()[0].metrics["method"]["updates"]
    assert [u[0] for u in updates] == [2, 4, 6, 8]
    assert [round(u[1] * N) for u in updates] == [232, 130, 92, 86]
