"""Every registered size builds, trains a step, and keeps odd input sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lotteryir.models import (
    ModelInfo,
    PromptIR,
    Restormer,
    available,
    build_model,
    model_names,
    register_model,
    registry,
    sizes,
)

ALL_SIZES = [(i.name, i.size) for i in available()]


def test_listing_has_models_sizes_and_counts() -> None:
    infos = available()
    assert all(isinstance(i, ModelInfo) and i.params > 0 and i.description for i in infos)
    table = {(i.name, i.size): i.params for i in infos}
    assert table[("mirl", "full")] == 35_592_263
    assert table[("restormer", "full")] == 26_126_644
    assert table[("restormer", "full-biasfree")] == 26_111_668
    assert {"mirl", "restormer"} <= set(model_names())
    assert {"full", "small", "tiny"} <= set(sizes("mirl"))
    assert {"full", "full-biasfree", "small", "tiny"} <= set(sizes("restormer"))
    for name in ("mirl", "restormer"):
        counts = [table[(name, s)] for s in ("full", "small", "tiny")]
        assert counts == sorted(counts, reverse=True)
        assert 100_000 <= table[(name, "small")] <= 2_000_000


@pytest.mark.parametrize("name,size", ALL_SIZES)
def test_forward_backward_keeps_odd_shapes(name: str, size: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, size)
    assert model.multiple == 8
    # Full sizes get a smaller odd input: the padding path is the same, the cost is not.
    x = torch.rand(1, 3, 13, 21) if "full" in size else torch.rand(1, 3, 37, 53)
    y = model(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert (
        sum(p.numel() for p in model.parameters())
        == dict(((i.name, i.size), i.params) for i in available())[(name, size)]
    )


@pytest.mark.parametrize("name,size", [(n, s) for n, s in ALL_SIZES if s == "tiny"])
def test_tiny_sizes_train_a_step_on_a_batch(name: str, size: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(8, 3, 64, 64)
    y = (x * 0.5).clamp(0, 1)  # a target the network does not already produce
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = (model(x) - y).abs().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    # The step reached the whole network: every parameter with a gradient moved, and the loss fell.
    trained = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(trained) > 0.9 * len(before), sorted(set(before) - set(trained))
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in trained)
    with torch.no_grad():
        assert (model(x) - y).abs().mean() < loss


def test_kwargs_override_the_config() -> None:
    model = build_model("restormer", "tiny", layer_norm="BiasFree", in_channels=1, out_channels=1)
    assert isinstance(model, Restormer)
    assert model(torch.rand(1, 1, 12, 12)).shape == (1, 1, 12, 12)
    assert not any(k.endswith("norm1.body.bias") for k in model.state_dict())
    assert isinstance(build_model("mirl", "tiny"), PromptIR)


def test_unknown_name_or_size_names_the_choices() -> None:
    with pytest.raises(ValueError, match="restormer"):
        build_model("nope")
    with pytest.raises(ValueError, match="tiny"):
        build_model("mirl", "huge")
    with pytest.raises(ValueError, match="WithBias"):
        build_model("restormer", "tiny", layer_norm="LayerNorm")
    with pytest.raises(ValueError, match="prompt_dims"):
        build_model("mirl", "tiny", prompt_dim=3)


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(registry, "_REGISTRY", {k: dict(v) for k, v in registry._REGISTRY.items()})
    yield


def test_users_register_their_own(scratch_registry) -> None:
    @register_model("twoconv", "tiny", description="two convs")
    def build(width: int = 4) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.Conv2d(width, 3, 3, padding=1))

    register_model("twoconv", "wide", lambda: build(width=16))
    assert sizes("twoconv") == ["tiny", "wide"]
    info = {(i.name, i.size): i for i in available()}
    assert info[("twoconv", "tiny")].params == 3 * 4 * 9 + 4 + 4 * 3 * 9 + 3
    assert info[("twoconv", "tiny")].description == "two convs"
    assert build_model("twoconv", "tiny", width=8)[0].out_channels == 8
    with pytest.raises(ValueError, match="already registered"):
        register_model("twoconv", "tiny", build)
    register_model("twoconv", "tiny", lambda: build(width=2), overwrite=True)
    assert build_model("twoconv", "tiny")[0].out_channels == 2


def test_identity_init_makes_the_network_return_its_input():
    from lotteryir.models import apply_init

    x = torch.rand(2, 3, 21, 30)
    for name in ("mirl", "restormer"):
        model = apply_init(build_model(name, "tiny"), "identity").eval()
        with torch.no_grad():
            assert torch.equal(model(x), x), name
        assert model.output.weight.abs().sum() == 0
    default = apply_init(build_model("mirl", "tiny"), "default").eval()
    assert default.output.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="no `output`|has none"):
        apply_init(torch.nn.Conv2d(3, 3, 1), "identity")

    class NoResidual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.output = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.output(x)

    with pytest.raises(ValueError, match="global residual"):
        apply_init(NoResidual(), "identity")
    with pytest.raises(ValueError, match="init must be"):
        apply_init(build_model("mirl", "tiny"), "zeros")
