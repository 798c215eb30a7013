"""BatchNorm recalibration recomputes running statistics and nothing else; the gradient probe leaves no trace."""

from __future__ import annotations

import torch
from torch import nn

from lotteryir.engine.batchnorm import gradient_probe, recalibrate_batchnorm, training_batches


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.BatchNorm2d(2), nn.Conv2d(2, 2, 3, padding=1), nn.Dropout(0.5), nn.BatchNorm2d(2))


def test_statistics_are_the_average_of_the_batches_and_nothing_else_changes():
    net = _net()
    bn = net[0]
    bn.running_mean.fill_(5.0)  # stale statistics, as after pruning
    bn.running_var.fill_(9.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    batches = [
        torch.randn(4, 2, 6, 6, generator=gen) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1) + 2.0 for _ in range(3)
    ]
    net.eval()
    assert recalibrate_batchnorm(net, batches) == 3
    # The first BatchNorm sees the batches themselves: its statistics are the plain average of the
    # batch means and of the (unbiased) batch variances, per channel.
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    variances = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-6)
    assert torch.allclose(bn.running_var, variances, atol=1e-5)
    assert bn.num_batches_tracked.item() == 3
    after = net.state_dict()
    for key, value in before.items():
        if "running" in key or "num_batches" in key:
            continue
        assert torch.equal(after[key], value), key  # weights, biases: untouched
    assert not net.training and not net[2].training and bn.momentum == 0.1  # modes and momentum restored


def test_dropout_stays_off_while_the_statistics_are_collected():
    """Dropout in train mode would scale what the second BatchNorm sees; recalibration keeps it in eval."""
    net = _net()
    x = torch.randn(8, 2, 5, 5, generator=torch.Generator().manual_seed(2))
    recalibrate_batchnorm(net, [x])
    with torch.no_grad():
        mid = net[1](torch.nn.functional.batch_norm(x, None, None, net[0].weight, net[0].bias, training=True))
    assert torch.allclose(net[3].running_mean, mid.mean(dim=(0, 2, 3)), atol=1e-5)


def test_no_batchnorm_means_nothing_to_do():
    assert recalibrate_batchnorm(nn.Conv2d(1, 1, 3), [torch.zeros(1, 1, 4, 4)]) == 0


def test_the_gradient_probe_reaches_every_used_tensor_and_changes_nothing():
    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            g = torch.Generator().manual_seed(i)
            return {"input": torch.rand(2, 8, 8, generator=g), "target": torch.rand(2, 8, 8, generator=g)}

    class WithUnused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.unused = _net(), nn.Conv2d(2, 2, 1)  # a layer the forward never calls

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    net = WithUnused()
    seen: set[str] = set()
    for name, p in net.named_parameters():
        p.register_hook(lambda g, name=name: seen.add(name))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torch.get_rng_state()
    gradient_probe(net, Pairs(), batch_size=2, loss="l1", seed=0, device=torch.device("cpu"))
    assert "body.1.weight" in seen and "unused.weight" not in seen
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(net.state_dict()[k], v) for k, v in before.items())  # BatchNorm statistics too
    assert torch.equal(torch.get_rng_state(), state) and net.training
    # The same seed gives the same batches (a resumed run recalibrates on the same data).
    a = [x for x, _ in training_batches(Pairs(), 2, 2, 5, torch.device("cpu"))]
    b = [x for x, _ in training_batches(Pairs(), 2, 2, 5, torch.device("cpu"))]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
