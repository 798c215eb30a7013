"""The top-level ticket API on a network lotteryir does not know."""

import torch
from torch import nn

import lotteryir
from lotteryir import IterativeMagnitudePruner


class Mine(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


def test_save_read_and_load_ticket_into_your_own_class(tmp_path):
    torch.manual_seed(0)
    model = Mine()
    pruner = IterativeMagnitudePruner(model, rate=0.5)
    pruner.prune()
    mask = lotteryir.save_ticket(model, tmp_path / "t.safetensors", run="unit")
    state, read_mask, meta = lotteryir.read_ticket(tmp_path / "t.safetensors")
    assert read_mask == mask == pruner.mask and meta["run"] == "unit" and meta["model"] is None
    loaded = lotteryir.load_ticket(tmp_path / "t.safetensors", model=Mine())
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(loaded.model(x), model(x))
    assert loaded.name == "Mine" and loaded.mask.density == 0.5
    # A plain model whose pruned weights are zeros gives the same mask.
    plain = Mine()
    plain.load_state_dict(pruner.export_state_dict())
    assert lotteryir.save_ticket(plain, tmp_path / "u.safetensors") == mask
