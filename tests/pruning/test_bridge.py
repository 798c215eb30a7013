"""The torch.nn.utils.prune bridge: compile-friendliness, bool masks, torch interop, exports."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch.nn.utils import prune

from lotteryir.pruning import IterativeMagnitudePruner, Mask, global_magnitude

from .nets import Awkward, fixed_batch, make_closure


def _compiled_graphs(model: torch.nn.Module, steps: int, between=None) -> list[int]:
    """Graphs torch.compile builds over ``steps`` training steps (a counting backend, no codegen)."""
    import torch._dynamo

    torch._dynamo.reset()
    built: list[int] = []

    def backend(gm, example_inputs):
        built.append(len(gm.graph.nodes))
        return gm.forward

    compiled = torch.compile(model, backend=backend)
    x, y = fixed_batch()
    seen = []
    for k in range(steps):
        if between is not None and k == steps // 2:
            between()
        (compiled(x) - y).abs().mean().backward()
        seen.append(len(built))
    torch._dynamo.reset()
    return seen


def test_compiled_masked_model_has_the_dense_graph_count_and_no_recompiles():
    torch.manual_seed(0)
    dense = Awkward()
    masked = copy.deepcopy(dense)
    pruner = IterativeMagnitudePruner(masked, rate=0.5)
    pruner.prune()
    dense_graphs = _compiled_graphs(dense, 4)[-1]
    # A pruning half-way (masks change in place) must not make torch.compile build anything new.
    seen = _compiled_graphs(masked, 6, between=pruner.prune)
    assert seen[-1] <= dense_graphs, (seen, dense_graphs)
    assert seen[0] == seen[-1], f"recompiled after pruning: {seen}"
    for name, keep in pruner.mask.items():
        module = masked.get_submodule(name.rsplit(".", 1)[0])
        assert (module.weight[~keep] == 0).all()


class _LayerNormFunction(torch.autograd.Function):
    """NAFNet's LayerNorm2d as published: dynamo gives up on its backward and runs the caller eagerly."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        ctx.eps = eps
        _, c, _, _ = x.size()
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + eps).sqrt()
        ctx.save_for_backward(y, var, weight)
        return weight.view(1, c, 1, 1) * y + bias.view(1, c, 1, 1)

    @staticmethod
    def backward(ctx, grad_output):
        eps = ctx.eps
        _, c, _, _ = grad_output.size()
        y, var, weight = ctx.saved_variables  # deprecated spelling, as in NAFNet; dynamo cannot trace it
        g = grad_output * weight.view(1, c, 1, 1)
        mean_g = g.mean(dim=1, keepdim=True)
        mean_gy = (g * y).mean(dim=1, keepdim=True)
        gx = 1.0 / torch.sqrt(var + eps) * (g - y * mean_gy - mean_g)
        return gx, (grad_output * y).sum(dim=(0, 2, 3)), grad_output.sum(dim=(0, 2, 3)), None


class _NAFBlock(torch.nn.Module):
    """conv -> norm -> convs; the norm is NAFNet's custom Function, or plain ops after an explicit graph break."""

    def __init__(self, brk: str, c: int):
        super().__init__()
        self.brk = brk
        self.norm_w = torch.nn.Parameter(torch.ones(c))
        self.norm_b = torch.nn.Parameter(torch.zeros(c))
        self.a = torch.nn.Conv2d(c, c, 1)
        self.dw = torch.nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.b = torch.nn.Conv2d(c, c, 1)

    def forward(self, h):
        if self.brk == "autograd_function":
            n = _LayerNormFunction.apply(h, self.norm_w, self.norm_b, 1e-6)
        else:  # a break dynamo resumes after
            torch._dynamo.graph_break()
            n = h * self.norm_w.view(1, -1, 1, 1) + self.norm_b.view(1, -1, 1, 1)
        return h + self.b(torch.relu(self.dw(self.a(n))))


class _NAFLike(torch.nn.Module):
    def __init__(self, brk: str, c: int = 8, blocks: int = 3):
        super().__init__()
        self.intro = torch.nn.Conv2d(3, c, 3, padding=1)
        self.body = torch.nn.Sequential(*[_NAFBlock(brk, c) for _ in range(blocks)])
        self.end = torch.nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x):
        return x + self.end(self.body(self.intro(x)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ctx.saved_variables
@pytest.mark.parametrize("brk", ["autograd_function", "graph_break"])
def test_graph_breaks_in_the_network_cost_masks_no_graphs(brk):
    import torch._dynamo

    torch.manual_seed(6)
    dense = _NAFLike(brk)
    masked = copy.deepcopy(dense)
    dense_graphs = _compiled_graphs(dense, 2)[-1]
    # Compiled once more, not reset: dynamo remembers the conv forward's code when the masks arrive,
    # and the reset inside _compiled_graphs must not bring the per-module graphs back.
    torch.compile(dense, backend=lambda gm, _: gm.forward)(fixed_batch()[0])
    pruner = IterativeMagnitudePruner(masked, rate=0.5)
    pruner.prune()
    seen = _compiled_graphs(masked, 4, between=pruner.prune)
    assert 1 <= seen[-1] <= dense_graphs, (seen, dense_graphs)
    assert seen[0] == seen[-1], f"recompiled after pruning: {seen}"

    # Compiled training still multiplies by the mask: pruned weights stay zero, outputs match eager.
    torch._dynamo.reset()
    compiled = torch.compile(masked, backend="aot_eager")
    opt = torch.optim.AdamW(masked.parameters(), lr=0.05, weight_decay=0.5)
    x, y = fixed_batch()
    for _ in range(3):
        opt.zero_grad()
        (compiled(x) - y).abs().mean().backward()
        opt.step()
    assert torch.allclose(compiled(x), masked(x), atol=1e-6)
    torch._dynamo.reset()
    for name, keep in pruner.mask.items():
        module = masked.get_submodule(name.rsplit(".", 1)[0])
        assert (module.weight_orig[~keep] == 0).all(), name
        assert (module.weight_orig.grad[~keep] == 0).all(), name
        assert (module.weight[~keep] == 0).all(), name


def test_compiled_training_keeps_pruned_weights_zero():
    torch.manual_seed(1)
    model = Awkward()
    pruner = IterativeMagnitudePruner(model, rate=0.6)
    pruner.prune()
    compiled = torch.compile(model, backend="aot_eager")
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.5)
    x, y = fixed_batch()
    for _ in range(3):
        opt.zero_grad()
        (compiled(x) - y).abs().mean().backward()
        opt.step()
    for name, keep in pruner.mask.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        assert (module.weight_orig[~keep] == 0).all(), name
        if name != "unused.weight":  # never called: no gradient
            assert (module.weight_orig.grad[~keep] == 0).all(), name
    twin = copy.deepcopy(model)  # the post-forward hook leaves no non-leaf tensor behind
    torch._dynamo.reset()
    assert torch.equal(twin(x), model(x))


def test_masks_are_bool_buffers_and_torch_prune_understands_them():
    model, _ = Awkward(), None
    pruner = IterativeMagnitudePruner(model, rate=0.5)
    pruner.prune()
    sd = model.state_dict()
    assert sd["stem.weight_mask"].dtype == torch.bool
    assert prune.is_pruned(model)
    expected = model.stem.weight_orig.detach() * model.stem.weight_mask
    prune.remove(model.stem, "weight")  # torch's own removal works on our hooks
    assert torch.equal(model.stem.weight.detach(), expected)
    assert "stem.weight" in model.state_dict() and "stem.weight_mask" not in model.state_dict()
    # Masks take a quarter of the bytes float32 masks would.
    mask_bytes = sum(t.numel() * t.element_size() for k, t in sd.items() if k.endswith("_mask"))
    assert mask_bytes == sum(t.numel() for k, t in sd.items() if k.endswith("_mask"))


def test_float_masks_of_older_state_dicts_load_into_bool_buffers():
    torch.manual_seed(2)
    model = Awkward()
    IterativeMagnitudePruner(model, rate=0.5).prune()
    sd = {k: (v.float() if k.endswith("_mask") else v) for k, v in model.state_dict().items()}
    other = Awkward()
    IterativeMagnitudePruner(other, rate=0.5)
    other.load_state_dict(sd)
    assert other.stem.weight_mask.dtype == torch.bool
    assert torch.equal(other.stem.weight_mask, model.stem.weight_mask)


def test_export_state_dict_is_contiguous_for_channels_last_models(tmp_path):
    torch.manual_seed(3)
    model = Awkward().to(memory_format=torch.channels_last)
    pruner = IterativeMagnitudePruner(model, rate=0.5)
    pruner.prune()
    exported = pruner.export_state_dict()
    assert all(t.is_contiguous() for t in exported.values())
    save_file(exported, str(tmp_path / "plain.safetensors"))  # raises on strided tensors


def test_prune_with_rewind_equals_prune_then_rewind():
    states = []
    for combined in (False, True):
        torch.manual_seed(4)
        model = Awkward()
        pruner = IterativeMagnitudePruner(model, make_closure(), rounds=2, rewind="init")
        pruner.run_round()  # round 0 trains; the unused conv is dropped from pruning
        with torch.no_grad():
            model.unused.weight_orig.add_(1.0)  # so its rewind shows
        if combined:
            pruner.prune(rewind=True)
        else:
            pruner.prune()
            pruner.rewind()
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=6),
    amount=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
    dirty=st.booleans(),
    zeros=st.booleans(),
)
def test_zero_pruned_fast_path_agrees_with_the_general_path(sizes, amount, seed, dirty, zeros):
    g = torch.Generator().manual_seed(seed)
    w = {f"t{i}": torch.randn(s, generator=g) for i, s in enumerate(sizes)}
    if zeros:  # exact zeros among the survivors too
        for t in w.values():
            t[::3] = 0.0
    mask = Mask({n: torch.rand(t.shape, generator=g) > 0.4 for n, t in w.items()})
    for n, t in w.items():
        if not dirty:  # as the pruner keeps them; dirty: stale values where pruned
            t.mul_(mask[n])
    expected = global_magnitude(w, mask, amount)
    assert global_magnitude(w, mask, amount, pruned_are_zero=True) == expected


def test_selection_on_many_tensors_matches_torch():
    # Above the sampling size, with small tensors batched into runs: the same mask as torch.
    g = torch.Generator().manual_seed(5)
    sizes = [3, 70_000, 5, 1_500_000, 200, 2_700_000] + [900] * 40
    w = {f"t{i}": torch.randn(s, generator=g) for i, s in enumerate(sizes)}
    mods = {n: torch.nn.Module() for n in w}
    for n, m in mods.items():
        m.weight = torch.nn.Parameter(w[n].clone())
    prune.global_unstructured([(m, "weight") for m in mods.values()], pruning_method=prune.L1Unstructured, amount=0.3)
    ours = global_magnitude(w, Mask.ones_like(w), 0.3)
    assert all(torch.equal(mods[n].weight_mask.bool(), ours[n]) for n in w)
    second = global_magnitude({n: t * ours[n] for n, t in w.items()}, ours, 0.5, pruned_are_zero=True)
    assert second == global_magnitude(w, ours, 0.5)
    with pytest.raises(ValueError, match="t1 contain"):
        bad = dict(w)
        bad["t1"] = w["t1"].clone()
        bad["t1"][7] = float("inf")
        global_magnitude(bad, Mask.ones_like(w), 0.3)
