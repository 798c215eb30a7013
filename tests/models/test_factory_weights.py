"""A factory that loads its own trained weights: lotteryir measures it on the meta device without a warning flood."""

from __future__ import annotations

import warnings

import torch
from safetensors.torch import save_file
from torch import nn

from lotteryir.models import build_model, register_import_path
from lotteryir.models.registry import signature

NETS = """
from pathlib import Path

from safetensors.torch import load_file
from torch import nn


def trained():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
    net.load_state_dict(load_file(str(Path(__file__).with_name("trained.safetensors"))))
    return net
"""


def test_a_factory_that_loads_weights_warns_nothing_and_builds_them(tmp_path):
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
    save_file(reference.state_dict(), str(tmp_path / "trained.safetensors"))
    (tmp_path / "nets.py").write_text(NETS)
    name = register_import_path(f"{tmp_path / 'nets.py'}:trained")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shapes = signature(name, "default")  # measured on the meta device
    assert shapes["0.weight"] == (4, 1, 3, 3)
    assert not [w for w in caught if "non-meta" in str(w.message)], [str(w.message) for w in caught[:3]]
    built = build_model(name, "default")  # a real build: the trained weights, exactly
    assert all(torch.equal(built.state_dict()[k], v) for k, v in reference.state_dict().items())
