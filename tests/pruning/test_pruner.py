import copy

import pytest
import torch
from torch import nn

from lotteryir.pruning import IterativeMagnitudePruner, Mask, attach_masks, effective_weights, select_prunable
from lotteryir.pruning.schedule import rounds_for_density

from .nets import Awkward, fixed_batch, make_closure


def _pruner(**kw):
    torch.manual_seed(0)
    model = Awkward()
    kw.setdefault("rounds", 3)
    return model, IterativeMagnitudePruner(model, make_closure(), **kw)


def test_default_selection_and_tied_and_unused():
    model = Awkward()
    names = select_prunable(model)
    assert "enc.weight" in names and "dec.weight" not in names  # tied: one entry
    assert "up.weight" in names and "body.0.dw.weight" in names and "unused.weight" in names
    assert not any(n.endswith("bias") or "norm" in n for n in names)
    assert select_prunable(model, exclude=["body.*"]) == [n for n in names if not n.startswith("body.")]
    assert "body.0.norm.weight" in select_prunable(model, include=["body.0.norm.weight"])


@pytest.mark.parametrize("scope", ["global", "layerwise", "random"])
def test_exact_density_after_k_rounds(scope):
    model, pruner = _pruner(scope=scope, rate=0.2, rounds=4)
    history = pruner.run()
    assert [h.round for h in history] == [0, 1, 2, 3, 4]
    assert "unused.weight" in pruner.excluded_unused and "unused.weight" not in pruner.mask
    mask = pruner.mask
    total = mask.num_total
    for h in history:
        assert h.total == total
        if scope == "layerwise":
            expected = sum(round(mask[n].numel() * 0.8**h.round) for n in mask)
        else:
            expected = round(total * 0.8**h.round)
        assert h.remaining == expected
    # The unused conv was never pruned.
    assert model.unused.weight_mask.all()


def test_target_density_sets_rounds():
    _, pruner = _pruner(rounds=None, target_density=0.5, rate=0.2)
    assert pruner.rounds == 4  # 0.8^3 = 0.512 > 0.5, 0.8^4 = 0.4096
    # A density quoted rounded is reached: 0.8^10 = 0.1074 counts for 0.107 (within 0.5%), 0.8^9 = 0.134 not.
    assert rounds_for_density(0.107, 0.2) == 10 and rounds_for_density(0.1, 0.2) == 11
    with pytest.raises(ValueError, match="already reached"):
        _pruner(rounds=None, target_density=1.0)


def test_random_scope_prunes_regardless_of_magnitude():
    # Half of the trained weights go: magnitude pruning would keep only weights larger than every pruned
    # one; random pruning keeps some smaller ones, and exactly as many.
    model, pruner = _pruner(scope="random", rate=0.5, rounds=1)
    pruner.run_round()
    ranked = effective_weights(pruner.params)
    mask = pruner.prune()
    w = torch.cat([ranked[n].abs().flatten() for n in mask])
    keep = torch.cat([m.flatten() for m in mask.values()])
    assert int(keep.sum()) == round(0.5 * keep.numel())
    assert float(w[keep].min()) < float(w[~keep].max())


def test_layer_rate_override_prunes_at_its_rate():
    model, pruner = _pruner(scope="layerwise", rate=0.5, layer_rates={"head.weight": 0.25}, rounds=2)
    pruner.run()
    n = model.head.weight_orig.numel()
    assert int(pruner.mask["head.weight"].sum()) == round(n * 0.75**2)
    m = int(pruner.mask["stem.weight"].sum())
    assert m == round(model.stem.weight_orig.numel() * 0.25)


def test_rewind_to_init_restores_survivors_and_unpruned():
    torch.manual_seed(1)
    model = Awkward()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    seen = {}

    def train(m, ctx):
        if ctx.round == 1:  # right after prune + rewind, before training
            seen.update({k: v.clone() for k, v in m.state_dict().items()})
        return make_closure()(m, ctx)

    pruner = IterativeMagnitudePruner(model, train, rounds=1)
    pruner.run()
    mask = pruner.mask
    assert torch.equal(seen["stem.weight_orig"][mask["stem.weight"]], init["stem.weight"][mask["stem.weight"]])
    assert torch.equal(seen["stem.bias"], init["stem.bias"])
    assert torch.equal(seen["body.0.norm.running_mean"], init["body.0.norm.running_mean"])


def test_rewind_unpruned_false_keeps_trained_biases():
    torch.manual_seed(1)
    model = Awkward()
    init_bias = model.stem.bias.detach().clone()
    trained = {}

    def train(m, ctx):
        if ctx.round == 1:
            trained["bias_at_round1_start"] = m.stem.bias.detach().clone()
        out = make_closure()(m, ctx)
        if ctx.round == 0:
            trained["bias_after_round0"] = m.stem.bias.detach().clone()
        return out

    IterativeMagnitudePruner(model, train, rounds=1, rewind_unpruned=False).run()
    assert torch.equal(trained["bias_at_round1_start"], trained["bias_after_round0"])
    assert not torch.equal(trained["bias_at_round1_start"], init_bias)


def test_late_rewind_to_step_k_restores_recorded_values():
    torch.manual_seed(2)
    model = Awkward()
    recorded = {}
    closure = make_closure(steps=4)

    def train(m, ctx):
        x, y = fixed_batch()
        if ctx.round == 1:
            recorded["start"] = m.stem.weight_orig.detach().clone()
            return closure(m, ctx)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
        for k in range(1, 5):
            opt.zero_grad()
            (m(x) - y).abs().mean().backward()
            opt.step()
            ctx.step(k)
            if k == 2:
                recorded["step2"] = m.stem.weight_orig.detach().clone()
        return {}

    pruner = IterativeMagnitudePruner(model, train, rounds=1, rewind="step:2")
    pruner.run()
    keep = pruner.mask["stem.weight"]
    assert torch.equal(recorded["start"][keep], recorded["step2"][keep])


def test_late_rewind_needs_enough_steps():
    model = Awkward()
    pruner = IterativeMagnitudePruner(model, make_closure(steps=2), rounds=1, rewind="step:5")
    with pytest.raises(RuntimeError, match="rewind to step 5 .* only 2 optimizer steps"):
        pruner.run()


def test_rewind_none_keeps_trained_weights():
    torch.manual_seed(3)
    model = Awkward()
    seen = {}

    def train(m, ctx):
        if ctx.round == 1:
            seen["start"] = m.stem.weight_orig.detach().clone()
        out = make_closure()(m, ctx)
        if ctx.round == 0:
            seen["trained"] = m.stem.weight_orig.detach().clone()
        return out

    pruner = IterativeMagnitudePruner(model, train, rounds=1, rewind="none")
    pruner.run()
    keep = pruner.mask["stem.weight"]
    assert torch.equal(seen["start"][keep], seen["trained"][keep])
    assert (seen["start"][~keep] == 0).all()  # the pruner stores zeros at pruned entries of _orig


def test_pruned_weights_stay_zero_through_adamw():
    model, pruner = _pruner(rounds=2)
    pruner.run()
    x, y = fixed_batch(1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.5)
    for _ in range(5):
        opt.zero_grad()
        (model(x) - y).abs().mean().backward()
        opt.step()
        for name, keep in pruner.mask.items():
            mod = model.get_submodule(name.rsplit(".", 1)[0])
            assert (mod.weight[~keep] == 0).all(), name
    assert (model.dec.weight[~pruner.mask["enc.weight"]] == 0).all()  # the tied owner too


def test_deepcopy_after_training_forward_and_state_dict_roundtrip():
    model, pruner = _pruner(rounds=1)
    pruner.run()
    x, _ = fixed_batch()
    model.train()
    y = model(x)  # leaves non-leaf weights behind in plain torch.nn.utils.prune
    twin = copy.deepcopy(model)
    assert torch.allclose(twin(x), model(x))
    sd = model.state_dict()
    assert "stem.weight_orig" in sd and "stem.weight_mask" in sd
    torch.manual_seed(9)
    other = Awkward()
    IterativeMagnitudePruner(other, make_closure(), rounds=1)
    other.load_state_dict(sd)
    assert torch.equal(other(x), model(x))
    assert y.requires_grad


def test_export_loads_strictly_into_plain_model():
    model, pruner = _pruner(rounds=2)
    pruner.run()
    exported = pruner.export_state_dict()
    assert not any(k.endswith(("_orig", "_mask")) for k in exported)
    plain = Awkward()
    assert list(exported) == list(plain.state_dict())  # same key order as an unpruned model
    plain.load_state_dict(exported, strict=True)
    x, _ = fixed_batch()
    model.eval(), plain.eval()
    assert torch.allclose(plain(x), model(x), atol=1e-6)
    assert Mask.from_zeros(exported, names=list(pruner.mask)) == pruner.mask


def test_remove_masks_makes_pruning_permanent():
    model, pruner = _pruner(rounds=1)
    pruner.run()
    x, _ = fixed_batch()
    model.eval()
    before = model(x)
    mask = pruner.mask
    pruner.remove_masks()
    assert not any(k.endswith(("_orig", "_mask")) for k in model.state_dict())
    assert model.dec.weight is model.enc.weight  # still tied
    assert torch.allclose(model(x), before, atol=1e-6)
    assert Mask.from_zeros(model.state_dict(), names=list(mask)) == mask


def test_controls_have_promised_masks():
    model, pruner = _pruner(rounds=2, controls=("random_reinit", "random_prune"))
    history = pruner.run()
    assert set(history[1].controls) == {"random_reinit", "random_prune"}
    assert "loss" in history[2].controls["random_prune"]
    ticket = pruner.mask
    reinit = pruner.make_control("random_reinit", seed=1)
    from lotteryir.pruning import current_mask, find_prunable

    params = [p for p in find_prunable(reinit) if p.name in ticket]
    assert current_mask(params) == ticket
    assert not torch.equal(reinit.stem.weight_orig, model.stem.weight_orig)
    rp = pruner.make_control("random_prune", seed=1)
    rmask = current_mask([p for p in find_prunable(rp) if p.name in ticket])
    assert rmask.remaining() == ticket.remaining() and rmask != ticket
    # Random prune starts from the rewind point (init here), as the ticket did.
    snap = pruner._snapshot["stem.weight"]
    assert torch.equal(rp.stem.weight_orig.detach(), snap * rmask["stem.weight"])
    # The real model is untouched by making controls.
    assert pruner.mask == ticket


def test_save_restore_state_reproduces_next_mask(tmp_path):
    model, pruner = _pruner(rounds=3)
    pruner.run_round()
    pruner.run_round()
    pruner.save_state(tmp_path / "state")
    expected = pruner.next_mask()
    torch.manual_seed(123)  # a different init: everything must come from the saved state
    model2 = Awkward()
    pruner2 = IterativeMagnitudePruner(model2, make_closure(), rounds=3)
    pruner2.load_state(tmp_path / "state")
    assert pruner2.round == 1 and pruner2.level == 1
    assert pruner2.mask == pruner.mask
    assert pruner2.next_mask() == expected
    assert pruner2.excluded_unused == ["unused.weight"]
    assert [h.round for h in pruner2.history] == [0, 1]
    pruner.run()
    pruner2.run()
    assert pruner2.mask == pruner.mask


def test_state_with_other_config_refused(tmp_path):
    model, pruner = _pruner(rounds=3)
    pruner.run_round()
    pruner.save_state(tmp_path)
    _, other = _pruner(rounds=3, rate=0.5)
    with pytest.raises(ValueError, match="different configuration .*rate"):
        other.load_state(tmp_path)


@pytest.mark.parametrize("rate", [0, 1, 1.5, -0.1])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="rate must be in \\(0, 1\\)"):
        IterativeMagnitudePruner(Awkward(), make_closure(), rate=rate, rounds=1)


def test_bad_patterns_and_masks():
    with pytest.raises(ValueError, match="matched no parameter.*'nothing.*'"):
        IterativeMagnitudePruner(Awkward(), make_closure(), rounds=1, exclude=["nothing.*"])
    with pytest.raises(ValueError, match="matches no prunable parameter"):
        IterativeMagnitudePruner(Awkward(), make_closure(), rounds=1, layer_rates={"nope": 0.1})
    model = Awkward()
    bad_shape = Mask({"stem.weight": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape mismatch: stem.weight"):
        attach_masks(model, bad_shape)
    with pytest.raises(ValueError, match="not prunable in the model: ghost.weight"):
        attach_masks(model, Mask({"ghost.weight": torch.ones(1, dtype=torch.bool)}))
    with pytest.raises(ValueError, match="rewind must be"):
        IterativeMagnitudePruner(Awkward(), make_closure(), rounds=1, rewind="later")
    with pytest.raises(ValueError, match="scope must be"):
        IterativeMagnitudePruner(Awkward(), make_closure(), rounds=1, scope="local")


def test_plain_model_without_unused_params_and_manual_api():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 1))
    pruner = IterativeMagnitudePruner(model, rate=0.5)
    pruner.prune()
    pruner.rewind()
    # No gradient seen at all: nothing dropped, both layers pruned.
    assert pruner.mask.num_remaining == round(0.5 * (200 + 20))
    pruner.prune()
    assert pruner.level == 2 and pruner.mask.num_remaining == round(220 * 0.25)


def test_a_torch_compile_wrapper_is_refused_naming_the_in_place_alternative():
    """Its parameters are named _orig_mod.*: a ticket of it would not load into the network itself."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(2, 1, 3))
    wrapped = torch.compile(net, backend="eager")
    assert next(iter(wrapped.state_dict())).startswith("_orig_mod.")
    with pytest.raises(TypeError, match=r"model\.compile\(\)"):
        IterativeMagnitudePruner(wrapped, rounds=1)
    outer = torch.nn.Sequential(torch.compile(net, backend="eager"))  # nested: refused too
    with pytest.raises(TypeError, match="_orig_mod"):
        IterativeMagnitudePruner(outer, rounds=1)
    IterativeMagnitudePruner(net, rounds=1)  # the network itself is fine
