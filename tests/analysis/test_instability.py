"""The generic instability API: any network, any closure honouring ctx.seed, any evaluate function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lotteryir.analysis import instability, write_interpolation
from lotteryir.pruning import Mask, RoundContext


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(16, 3, 8, 8, generator=g)
    return clean + 0.1 * torch.randn(clean.shape, generator=g), clean


class Closure:
    """Trains a few SGD steps in an order drawn from ctx.seed alone; records what each call saw."""

    def __init__(self, use_seed: bool = True) -> None:
        self.calls: list[dict] = []
        self.use_seed = use_seed

    def __call__(self, model: nn.Module, ctx: RoundContext) -> dict:
        x, y = _data()
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        seed = ctx.seed if self.use_seed else 0
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).tolist()
        self.calls.append(
            {"seed": ctx.seed, "round": ctx.round, "density": ctx.density, "start": start, "order": order}
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        for i in range(0, len(order), 4):
            idx = order[i : i + 4]
            opt.zero_grad()
            ((model(x[idx]) - y[idx]) ** 2).mean().backward()
            opt.step()
        return {"steps": len(order) // 4}


def evaluate(model: nn.Module) -> dict[str, float]:
    x, y = _data()
    mse = ((model(x) - y) ** 2).mean().clamp_min(1e-10)
    return {"set": float(-10 * torch.log10(mse))}


def _mask(model: nn.Module) -> Mask:
    g = torch.Generator().manual_seed(1)
    return Mask(
        {n: torch.rand(p.shape, generator=g) > 0.5 for n, p in model.named_parameters() if n.endswith("weight")}
    )


def test_the_two_copies_differ_only_by_their_seed_and_start_at_the_state_given():
    torch.manual_seed(0)
    model, state = Net(), Net().state_dict()
    train = Closure()
    result = instability(model, train, evaluate, state=state, seeds=(5, 6), round=3)
    first, second = train.calls
    assert (first["seed"], second["seed"]) == (5, 6)
    assert first["round"] == second["round"] == 3 and first["density"] == second["density"] == 1.0
    assert first["order"] != second["order"]
    for key in state:
        assert torch.equal(first["start"][key], state[key]) and torch.equal(second["start"][key], state[key])
    assert len(result.alphas) == 11 and len(result.psnr["set"]) == 11
    assert result.psnr["set"][0] != result.psnr["set"][-1]  # two different solutions
    assert result.train == [{"steps": 4}, {"steps": 4}]


def test_the_model_handed_in_is_not_changed():
    torch.manual_seed(0)
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    instability(model, Closure(), evaluate, mask=_mask(model))
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_every_point_of_the_path_keeps_the_pruned_weights_at_zero():
    torch.manual_seed(0)
    model = Net()
    mask = _mask(model)
    seen = []

    def check(net: nn.Module) -> dict[str, float]:
        for name, m in mask.items():
            module = getattr(net, name.split(".")[0])
            seen.append(bool((module.weight[~m] == 0).all()))  # what the forward computes with
            seen.append(bool((module.weight_orig[~m] == 0).all()))  # and what is stored
        return evaluate(net)

    result = instability(model, Closure(), check, mask=mask)
    assert len(seen) == 2 * len(mask) * 11 and all(seen)
    assert result.mean_barrier >= 0


def test_the_interpolation_zeroes_pruned_entries_even_when_the_endpoints_hold_values():
    net = nn.Linear(3, 2)
    a = {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}
    b = {"weight": 3 * torch.ones(2, 3), "bias": torch.ones(2)}
    mask = Mask({"weight": torch.tensor([[True, False, True], [False, True, True]])})
    write_interpolation(net, a, b, 0.25, mask)
    assert torch.equal(net.weight.detach(), torch.tensor([[1.5, 0, 1.5], [0, 1.5, 1.5]]))
    assert torch.allclose(net.bias.detach(), torch.full((2,), 0.25))
    write_interpolation(net, a, b, 1.0)
    assert torch.equal(net.weight.detach(), b["weight"])


def test_a_closure_that_ignores_the_seed_trains_twin_copies_with_no_barrier():
    torch.manual_seed(0)
    result = instability(Net(), Closure(use_seed=False), evaluate)
    curve = result.psnr["set"]
    assert curve[0] == curve[-1] and result.mean_barrier == pytest.approx(0.0, abs=1e-4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="two different seeds"):
        instability(Net(), Closure(), evaluate, seeds=(1, 1))
    with pytest.raises(ValueError, match="at least 11"):
        instability(Net(), Closure(), evaluate, points=5)
    with pytest.raises(ValueError, match="lacks"):
        instability(Net(), Closure(), evaluate, state={"a.weight": torch.zeros(4, 3, 3, 3)})
