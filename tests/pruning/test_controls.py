"""random_reinit re-draws everything a fresh model would draw, or names what it cannot."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lotteryir.pruning import IterativeMagnitudePruner, ReinitError, attach_masks, check_reinit, reinitialize


class CustomNorm(nn.Module):
    """A LayerNorm written by hand, as NAFNet's LayerNorm2d: no reset_parameters()."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        mu, var = x.mean(1, keepdim=True), x.var(1, keepdim=True, unbiased=False)
        return (x - mu) / (var + 1e-6).sqrt() * self.weight[:, None, None] + self.bias[:, None, None]


class Net(nn.Module):
    """A bare nn.Parameter, a custom norm, BatchNorm buffers and an untrained constant buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = CustomNorm(4)
        self.bn = nn.BatchNorm2d(4)
        self.beta = nn.Parameter(torch.rand(1, 4, 1, 1))  # NAFNet's beta/gamma are bare parameters
        self.head = nn.Conv2d(4, 3, 1)
        self.register_buffer("table", torch.arange(4.0))  # a constant, not trained

    def forward(self, x):
        h = self.bn(self.norm(self.conv(x))) * self.beta
        return x + self.head(h + self.table[None, :, None, None])


def _trained_looking(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(3.0)  # far from anything an initializer draws
        model.bn.running_mean.fill_(5.0)
    return model


def test_reset_parameters_alone_names_what_it_cannot_redraw():
    model = Net()
    assert sorted(check_reinit(model)) == ["beta", "norm.bias", "norm.weight"]
    with pytest.raises(ReinitError, match="beta, norm.weight, norm.bias.*model_factory="):
        IterativeMagnitudePruner(model, rounds=1, controls=("random_reinit",))
    IterativeMagnitudePruner(Net(), rounds=1, controls=("random_prune",))  # only random_reinit needs it


def test_factory_redraws_every_parameter_and_buffer_and_keeps_masks():
    torch.manual_seed(0)
    model = _trained_looking(Net())
    pruner = IterativeMagnitudePruner(model, rounds=1, controls=("random_reinit",), model_factory=Net)
    x = torch.rand(2, 3, 8, 8)
    model(x).abs().mean().backward()  # every tensor got a gradient: nothing dropped as unused
    pruner.prune()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    control = pruner.make_control("random_reinit", seed=11)
    with torch.random.fork_rng():
        torch.manual_seed(11)
        fresh = Net()
    state = {k.replace("_orig", ""): v for k, v in control.state_dict().items() if not k.endswith("_mask")}
    for name, value in fresh.state_dict().items():
        if value.is_floating_point():  # exactly what a fresh model draws (the pruner keeps pruned entries at zero)
            expected = value * pruner.mask[name] if name in pruner.mask else value
            assert torch.equal(state[name], expected), name
    assert torch.equal(control.bn.running_mean, torch.zeros(4))
    for name, m in pruner.mask.items():  # the ticket's mask, applied to the fresh weights
        module = control.get_submodule(name.rsplit(".", 1)[0])
        assert torch.equal(module.weight_mask.bool(), m)
        assert torch.equal(module.weight, module.weight_orig * module.weight_mask)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the ticket is untouched


def test_init_fn_that_covers_everything_is_accepted_and_constant_buffers_survive():
    def init(model: nn.Module) -> None:
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        nn.init.ones_(model.norm.weight)
        nn.init.zeros_(model.norm.bias)
        nn.init.uniform_(model.beta)

    model = _trained_looking(Net())
    attach_masks(model)
    assert check_reinit(model, init) == []
    reinitialize(model, seed=3, init_fn=init)
    assert torch.equal(model.norm.weight.detach(), torch.ones(4)) and bool((model.beta < 1).all())
    assert torch.equal(model.table, torch.arange(4.0))  # untouched buffers keep their (constant) value
    assert torch.equal(model.conv.weight, model.conv.weight_orig * model.conv.weight_mask)


def test_promptir_prompts_and_temperatures_are_redrawn_by_the_factory():
    from lotteryir.models import build_model

    torch.manual_seed(0)
    model = _trained_looking_promptir(build_model("mirl", "tiny"))
    names = check_reinit(model)
    assert any("prompt_param" in n for n in names) and any("temperature" in n for n in names)
    attach_masks(model)
    reinitialize(model, seed=5, factory=lambda: build_model("mirl", "tiny"))
    with torch.random.fork_rng():
        torch.manual_seed(5)
        fresh = build_model("mirl", "tiny")
    assert torch.equal(model.prompt1.prompt_param, fresh.prompt1.prompt_param)
    assert torch.equal(model.encoder_level1[0].attn.temperature, fresh.encoder_level1[0].attn.temperature)
    assert torch.equal(model.output.weight_orig, fresh.output.weight)


def _trained_looking_promptir(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(3.0)
    return model


def test_factory_for_another_network_is_refused():
    model = Net()
    attach_masks(model)
    with pytest.raises(ReinitError, match="different network"):
        reinitialize(model, seed=0, factory=lambda: nn.Conv2d(3, 3, 1))
