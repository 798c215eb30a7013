"""Runs that grow: extend(), continuing a saved run with more rounds, adopting an already pruned model."""

from __future__ import annotations

import copy

import pytest
import torch

from lotteryir.pruning import IterativeMagnitudePruner, RoundContext

from .nets import Awkward, fixed_batch, make_closure


def _pruner(**kw) -> tuple[Awkward, IterativeMagnitudePruner]:
    torch.manual_seed(0)
    model = Awkward()
    kw.setdefault("rounds", 3)
    return model, IterativeMagnitudePruner(model, make_closure(steps=4), **kw)


def test_extend_continues_a_finished_run_with_another_rewind():
    model, pruner = _pruner(rewind="init", rewind_points=[2])
    pruner.run()
    assert pruner.finished and pruner.round == 3
    seen = {}

    def closure(m, ctx):
        seen[ctx.round] = m.stem.weight_orig.detach().clone()  # right after prune + rewind
        return make_closure(steps=4)(m, ctx)

    step2 = pruner._points[2]["stem.weight"]
    pruner.extend(rounds=2, rewind="step:2")
    history = pruner.run(closure)
    assert [h.round for h in history] == [0, 1, 2, 3, 4, 5]
    assert [h.rewind for h in history] == ["", "init", "init", "init", "step:2", "step:2"]
    assert history[5].remaining == round(history[0].remaining * 0.8**5)  # the exact schedule carries on
    keep = pruner.mask["stem.weight"]
    assert torch.equal(seen[5][keep], step2[keep])
    assert pruner.extensions == [{"after_round": 3, "rounds": [3, 5], "rewind": ["init", "step:2"]}]


def test_extend_to_a_target_density_and_errors_name_what_is_possible():
    _, pruner = _pruner(rounds=1)
    pruner.run()
    pruner.extend(target_density=0.5)
    assert pruner.rounds == 4 and not pruner.finished
    with pytest.raises(ValueError, match="already has 4"):
        pruner.extend(target_density=0.6)
    with pytest.raises(ValueError, match=r"step:3 needs the weights of step 3 .*kept: init.*rewind_points=\[3\]"):
        pruner.extend(rounds=1, rewind="step:3")
    pruner.extend(rounds=1, rewind="none")  # always possible
    assert str(pruner.rewind_spec) == "none" and pruner.rounds == 5


def test_saved_run_continues_with_more_rounds_and_its_extension(tmp_path):
    model, pruner = _pruner(rounds=2, rewind="init", rewind_points=[3])
    pruner.run()
    pruner.extend(rounds=1, rewind="step:3")
    pruner.save_state(tmp_path / "state")
    # Created as the run was first made: the state says it grew, and to step:3.
    torch.manual_seed(5)
    again = IterativeMagnitudePruner(Awkward(), make_closure(steps=4), rounds=2, rewind="init")
    again.load_state(tmp_path / "state")
    assert again.rounds == 3 and str(again.rewind_spec) == "step:3" and not again.finished
    assert again._snapshot_step == 3 and 0 in again._points  # init kept for a later switch back
    # Created with more rounds than saved: that is an extension too.
    torch.manual_seed(5)
    longer = IterativeMagnitudePruner(Awkward(), make_closure(steps=4), rounds=6, rewind="init")
    longer.load_state(tmp_path / "state")
    assert longer.rounds == 6 and longer.extensions[-1]["rounds"] == [3, 6]
    pruner.run_round()
    again.run_round()
    assert again.mask == pruner.mask
    with pytest.raises(ValueError, match="different configuration.*rewind"):
        IterativeMagnitudePruner(Awkward(), make_closure(), rounds=2, rewind="none").load_state(tmp_path / "state")


def test_a_pruned_model_is_adopted_as_its_level():
    model, pruner = _pruner(rounds=2)
    pruner.run()
    expected_next = pruner.next_mask()
    # A new pruner on the same model, masks still attached: level 2, not a dense round 0.
    trained = copy.deepcopy(model)
    adopter = IterativeMagnitudePruner(trained, make_closure(steps=4), rounds=3)
    assert adopter.adopted_level == 2 and adopter.round == 2 and adopter.level == 2
    assert adopter.excluded_unused == ["unused.weight"]  # left whole: not part of the schedule
    assert adopter.next_mask() == expected_next
    history = adopter.run()
    assert [h.round for h in history] == [3]
    assert history[0].remaining == round(pruner.history[0].remaining * 0.8**3)


def test_exact_zeros_of_an_exported_ticket_are_adopted():
    model, pruner = _pruner(rounds=1)
    pruner.run()
    plain = Awkward()
    plain.load_state_dict(pruner.export_state_dict())
    adopter = IterativeMagnitudePruner(plain, make_closure(), rounds=2)
    assert adopter.adopted_level == 1
    assert adopter.mask == pruner.mask
    # Rewinding goes to the weights as given (the ticket), there being no round 0.
    ticket = pruner.export_state_dict()
    x, _ = fixed_batch()
    assert torch.equal(plain(x), model(x))  # adopting changed nothing the network computes
    new_mask = adopter.prune(rewind=True)
    assert adopter.level == 2
    rewound = adopter.export_state_dict()
    assert rewound.keys() == ticket.keys()
    tied = {"dec.weight": "enc.weight"}  # Awkward's alias is exported under both names
    for name, value in ticket.items():
        if tied.get(name, name) in new_mask:
            keep = new_mask[tied.get(name, name)]
            assert keep.sum() < pruner.mask[tied.get(name, name)].sum(), name  # this level pruned more of it
            assert torch.equal(rewound[name][keep], value[keep]), name  # survivors: the ticket's values
            assert not rewound[name][~keep].any(), name
        else:
            assert torch.equal(rewound[name], value), name  # unpruned tensors: the ticket's too
    with pytest.raises(ValueError, match="no round 0 to take step 5 from"):
        IterativeMagnitudePruner(copy.deepcopy(plain), rounds=2, rewind="step:5")


def test_masks_that_are_no_level_are_refused_before_training():
    model, pruner = _pruner(rounds=1)
    pruner.run()
    with pytest.raises(ValueError, match=r"carries pruning masks \(density 0\.8.*no level.*rate 0\.3.*extend\(\)"):
        IterativeMagnitudePruner(model, make_closure(), rounds=2, rate=0.3)


def test_dense_models_with_zero_initialised_tensors_start_dense(caplog):
    torch.manual_seed(0)
    model = Awkward()
    with torch.no_grad():
        model.head.weight.zero_()  # a zero-initialised output layer is not pruning
        model.stem.weight[0, :, :2] = 0.0  # 18 zeros: no level, but more than stray ones
    pruner = IterativeMagnitudePruner(model, make_closure(), rounds=1)
    assert pruner.adopted_level is None and pruner.round == -1
    assert "treating them as ordinary weights" in caplog.text


def test_removing_the_masks_lets_a_pruner_start_over_from_the_zeros_it_cannot_adopt():
    model, pruner = _pruner(rounds=1)
    pruner.run()
    pruner.remove_masks()  # plain weights with exact zeros: density 0.8, level 1 at rate 0.2 ...
    fresh = IterativeMagnitudePruner(model, make_closure(), rounds=1, rate=0.3)  # ... but no level at 0.3
    assert fresh.adopted_level is None and fresh.mask.density == 1.0


def test_iter_rounds_yields_each_round_as_it_finishes_and_ctx_names_what_trains():
    model, pruner = _pruner(rounds=2, controls=("random_reinit", "random_prune"))
    kinds: list[tuple[int, str, bool, object]] = []

    def closure(m, ctx: RoundContext):
        kinds.append((ctx.round, ctx.kind, ctx.is_control, ctx.extras.get("control")))
        return make_closure(steps=2)(m, ctx)

    done = []
    for record in pruner.iter_rounds(closure):
        done.append((record.round, len(kinds)))  # yielded before the next round trains
    assert done == [(0, 1), (1, 4), (2, 7)]
    assert kinds[:4] == [
        (0, "ticket", False, None),
        (1, "ticket", False, None),
        (1, "random_reinit", True, "random_reinit"),
        (1, "random_prune", True, "random_prune"),
    ]


def _gated() -> torch.nn.Module:
    """A small restorer with NAFNet-style per-channel gains (1, C, 1, 1) initialised small."""

    class Gated(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.b = torch.nn.Conv2d(8, 3, 3, padding=1)
            self.beta = torch.nn.Parameter(torch.full((1, 8, 1, 1), 1e-3))

        def forward(self, x):
            return x + self.b(torch.relu(self.a(x)) * (1 + self.beta))

    torch.manual_seed(0)
    return Gated()


def test_included_tensors_on_another_scale_and_layer_collapse_warn():
    from lotteryir.pruning import PruningWarning

    model = _gated()
    pruner = IterativeMagnitudePruner(model, include=["beta"], rate=0.5)
    with pytest.warns(PruningWarning) as caught:
        pruner.prune()
    messages = [str(w.message) for w in caught]
    assert any("include= (beta)" in m and "apart" in m for m in messages), messages
    assert any("layer collapse" in m and "beta 1.000 -> 0.000" in m for m in messages), messages
    # Its own rate: no collapse, and the scale warning is given once only.
    model = _gated()
    pruner = IterativeMagnitudePruner(model, include=["beta"], layer_rates={"beta": 0.1}, rate=0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PruningWarning)
        pruner.prune()
        pruner.prune()
