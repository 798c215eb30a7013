"""lotteryir.checkpoints.load_checkpoint: model plus the mask a released ticket's zeros encode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lotteryir.checkpoints import load_checkpoint
from lotteryir.models import CheckpointMismatchError, build_model


def test_zeroed_weights_give_their_mask(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("mirl", "tiny")
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["encoder_level1.0.attn.qkv.weight"][::2] = 0.0  # half the rows pruned
    sd["prompt1.linear_layer.weight"][0] = 0.0
    sd["prompt1.prompt_param"].zero_()  # not a conv/linear weight: never in the mask
    torch.save({"state_dict": {f"net.{k}": v for k, v in sd.items()}}, tmp_path / "ticket.ckpt")

    loaded = load_checkpoint(tmp_path / "ticket.ckpt")
    assert (loaded.name, loaded.size, loaded.fmt) == ("mirl", "tiny", "lightning")
    assert "prompt1.prompt_param" not in loaded.mask
    qkv = loaded.mask["encoder_level1.0.attn.qkv.weight"]
    assert not qkv[::2].any() and qkv[1::2].all()
    assert not loaded.mask["prompt1.linear_layer.weight"][0].any()
    assert loaded.mask["output.weight"].all()
    pruned = qkv[::2].numel() + sd["prompt1.linear_layer.weight"][0].numel()
    assert loaded.mask.num_total - loaded.mask.num_remaining == pruned
    assert loaded.report.density == pytest.approx(loaded.mask.density) and loaded.mask.density < 1.0
    assert torch.equal(
        loaded.model.state_dict()["encoder_level1.0.attn.qkv.weight"], sd["encoder_level1.0.attn.qkv.weight"]
    )


def test_dense_checkpoint_has_density_one(tmp_path: Path) -> None:
    save_file(build_model("restormer", "tiny").state_dict(), str(tmp_path / "dense.safetensors"))
    loaded = load_checkpoint(tmp_path / "dense.safetensors", name="restormer")
    assert (loaded.name, loaded.size, loaded.fmt) == ("restormer", "tiny", "safetensors")
    assert loaded.mask.density == 1.0 and loaded.report.density == 1.0


def test_wrong_model_names_keys_and_the_file(tmp_path: Path) -> None:
    torch.save({"params": build_model("restormer", "tiny").state_dict()}, tmp_path / "net_g.pth")
    with pytest.raises(CheckpointMismatchError, match=r"net_g\.pth: .*restormer/tiny"):
        load_checkpoint(tmp_path / "net_g.pth", name="mirl", size="tiny")
