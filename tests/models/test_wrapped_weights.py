"""Weight files as other code saves them: under DataParallel's "module.", and BatchNorm without its counter."""

from __future__ import annotations

import torch
from torch import nn

from lotteryir.checkpoints import load_weights_file
from lotteryir.models.weights import load_weights


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Conv2d(3, 1, 3, padding=1))


def test_a_data_parallel_file_loads_into_the_network(tmp_path):
    torch.manual_seed(0)
    source = _net()
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save(wrapped, tmp_path / "dp.pth")
    target = _net()
    assert load_weights_file(target, tmp_path / "dp.pth") == "plain"
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


def test_a_child_really_named_module_keeps_its_keys():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = _net()

    torch.manual_seed(1)
    source, target = Holder(), Holder()
    load_weights(target, source.state_dict())  # "module." is this network's own name here: nothing stripped
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


def test_batchnorm_counters_an_old_file_lacks_are_filled_in():
    torch.manual_seed(2)
    source = _net()
    old = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    target = _net()
    target[1].num_batches_tracked.fill_(7)
    load_weights(target, old)
    assert torch.equal(target[1].running_var, source[1].running_var)
    assert target[1].num_batches_tracked.item() == 7  # the network's own
