"""Checkpoint import: every released format round-trips; mismatches name their keys."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lotteryir.models import (
    CheckpointError,
    CheckpointMismatchError,
    build_from_state_dict,
    build_model,
    guess_model,
    load_weights,
    read_checkpoint,
)


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in build_model("mirl", "tiny").state_dict().items()}


def _write(kind: str, sd: dict[str, torch.Tensor], path: Path) -> None:
    if kind == "safetensors":
        save_file(sd, str(path))
    elif kind == "lightning":
        torch.save(
            {
                "epoch": 3,
                "global_step": 100,
                "pytorch-lightning_version": "2.1.0",
                "state_dict": {f"net.{k}": v for k, v in sd.items()},
                "optimizer_states": [{"state": {}, "param_groups": [{"lr": 2e-4}]}],
            },
            path,
        )
    elif kind == "basicsr":
        torch.save({"params": sd}, path)
    elif kind == "basicsr-ema":
        torch.save({"params_ema": sd}, path)
    else:
        torch.save(sd, path)


@pytest.mark.parametrize("kind", ["safetensors", "lightning", "basicsr", "basicsr-ema", "plain"])
def test_formats_round_trip(tmp_path: Path, weights: dict[str, torch.Tensor], kind: str) -> None:
    path = tmp_path / "weights.bin"  # the format is detected from content, not the name
    _write(kind, weights, path)
    sd, fmt = read_checkpoint(path)
    assert fmt == kind
    assert sd.keys() == weights.keys() and all(torch.equal(sd[k], weights[k]) for k in weights)
    model, name, size = build_from_state_dict(sd)
    assert (name, size) == ("mirl", "tiny")
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_lightning_prefix_is_stripped_only_at_the_start(tmp_path: Path) -> None:
    sd = {"net.a.net.weight": torch.ones(2), "loss_fn.net.b": torch.zeros(1)}
    torch.save({"state_dict": sd}, tmp_path / "x.ckpt")
    got, fmt = read_checkpoint(tmp_path / "x.ckpt")
    assert fmt == "lightning" and list(got) == ["a.net.weight", "loss_fn.net.b"]


def test_prune_reparametrised_weights_are_folded(tmp_path: Path) -> None:
    sd = {
        "conv.weight_orig": torch.tensor([1.0, 2.0, 3.0]),
        "conv.weight_mask": torch.tensor([1.0, 0.0, 1.0]),
        "conv.bias": torch.ones(1),
    }
    torch.save(sd, tmp_path / "pruned.pt")
    got, _ = read_checkpoint(tmp_path / "pruned.pt")
    assert list(got) == ["conv.weight", "conv.bias"]
    assert got["conv.weight"].tolist() == [1.0, 0.0, 3.0]


def test_mismatch_names_keys_and_guesses_the_model(weights: dict[str, torch.Tensor]) -> None:
    model = build_model("restormer", "tiny")
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights(model, weights, model_name="restormer", size="tiny", source="ticket.ckpt")
    message = str(err.value)
    assert message.startswith("ticket.ckpt: weights do not match restormer/tiny")
    assert "prompt1.prompt_param" in message and "unexpected keys" in message
    assert "keys with the wrong shape" in message and "mirl/tiny" in message
    assert err.value.guess == ("mirl", "tiny")
    assert isinstance(err.value, ValueError)


def test_shape_mismatch_and_partial_match(weights: dict[str, torch.Tensor]) -> None:
    sd = dict(weights)
    sd["output.weight"] = torch.zeros(3, 1, 3, 3)
    del sd["refinement.0.norm1.body.bias"]
    assert guess_model(sd) == ("mirl", "tiny")
    with pytest.raises(CheckpointMismatchError, match=r"output\.weight \(file \(3, 1, 3, 3\), model \(3, 12, 3, 3\)\)"):
        build_from_state_dict(sd)
    with pytest.raises(CheckpointMismatchError, match="refinement.0.norm1.body.bias"):
        build_from_state_dict(sd, "mirl", "tiny")


def test_unrelated_weights_match_no_model() -> None:
    sd = {"fc.weight": torch.zeros(2, 2)}
    assert guess_model(sd) is None
    with pytest.raises(CheckpointError, match="match no registered model"):
        build_from_state_dict(sd, source="other.pt")


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_pickles_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pt: refused to load") as refused:
        read_checkpoint(path)
    assert "never run" not in capsys.readouterr().out
    assert "weights_only=False" not in str(refused.value) and "nothing in it was executed" in str(refused.value)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", pickle.dumps([1, 2, 3], protocol=2)])
def test_not_a_checkpoint(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        read_checkpoint(path)


def test_unrecognised_layout_and_missing_file(tmp_path: Path) -> None:
    torch.save({"model": 3, "epoch": 1}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="odd.pt: unrecognised checkpoint layout .*'model'"):
        read_checkpoint(tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="checkpoint not found: .*missing.pt"):
        read_checkpoint(tmp_path / "missing.pt")


def test_corrupt_safetensors(tmp_path: Path, weights: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(100)}, str(path))
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="w.safetensors: corrupt safetensors"):
        read_checkpoint(path)
