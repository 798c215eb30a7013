"""The full configurations are the published networks: same keys, shapes and outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lotteryir.models import build_model

REFERENCES = {
    "mirl_full": ("mirl", "full", 35_592_263),
    "restormer_full": ("restormer", "full", 26_126_644),
    "restormer_full_biasfree": ("restormer", "full-biasfree", 26_111_668),
}
PROMPTIR_UNUSED = [
    "chnl_reduce1.weight",
    "chnl_reduce2.weight",
    "chnl_reduce3.weight",
    "reduce_noise_channel_1.weight",
    "reduce_noise_channel_2.weight",
    "reduce_noise_channel_3.weight",
]


def _fill_module(reference_dir: Path):
    spec = importlib.util.spec_from_file_location("reference_fill", reference_dir / "fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("ref", REFERENCES)
def test_keys_shapes_and_count_match_published(reference_dir: Path, ref: str) -> None:
    name, size, count = REFERENCES[ref]
    expected = json.loads((reference_dir / f"{ref}.json").read_text())
    with torch.device("meta"):
        model = build_model(name, size)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["parameters"] == count


@pytest.mark.parametrize("ref", REFERENCES)
def test_outputs_match_published(reference_dir: Path, ref: str) -> None:
    name, size, _ = REFERENCES[ref]
    model = build_model(name, size).eval()
    _fill_module(reference_dir).deterministic_fill(model)
    io = load_file(str(reference_dir / f"{ref}_io.safetensors"))
    assert {"input_0", "output_0", "input_1", "output_1"} <= set(io)
    for i in (0, 1):
        with torch.no_grad():
            out = model(io[f"input_{i}"])
        assert out.shape == io[f"output_{i}"].shape
        assert (out - io[f"output_{i}"]).abs().max().item() <= 1e-5


def test_promptir_unused_convs_exist_but_get_no_gradient() -> None:
    model = build_model("mirl", "tiny")
    model(torch.rand(1, 3, 16, 16)).mean().backward()
    params = dict(model.named_parameters())
    assert all(params[k].grad is None for k in PROMPTIR_UNUSED)
    assert sum(p.grad is None for p in params.values()) == len(PROMPTIR_UNUSED)
    with torch.device("meta"):
        full = dict(build_model("mirl", "full").named_parameters())
    assert sum(full[k].numel() for k in PROMPTIR_UNUSED) == 215_296
