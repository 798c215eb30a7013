"""A 1-channel (grayscale) network through every command: prune, evaluate, restore, export --format onnx, web."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from lotteryir.cli import main
from lotteryir.data.io import to_grayscale
from lotteryir.models import build_model, register_import_path
from lotteryir.runs import read_history

from ..reliability.errors import one_error_line
from ..tiny_run import OWN_MODEL_ARGS

GRAY_NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, channels=1):
        super().__init__()
        self.a = nn.Conv2d(channels, 4, 3, padding=1)
        self.b = nn.Conv2d(4, channels, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


def two():
    return Net(2)
"""


@pytest.fixture(scope="module")
def gray_run(tmp_path_factory) -> tuple[Path, str]:
    """A finished 1-round run of a 1-channel network on the sample photographs (read as their luma)."""
    folder = tmp_path_factory.mktemp("gray")
    (folder / "graynets.py").write_text(GRAY_NET)
    model = f"{folder / 'graynets.py'}:Net"
    out = folder / "run"
    assert main(["prune", "--model", model, "--rounds", "1", *OWN_MODEL_ARGS, "--out", str(out)]) == 0
    return out, model


def test_prune_reads_gray_images_and_records_the_protocol(gray_run):
    out, _ = gray_run
    history = read_history(out)
    assert [h["round"] for h in history] == [0, 1]
    protocol = history[-1]["protocol"]
    assert protocol["channels"] == 1 and protocol["crop_border"] == 0 and protocol["y_channel"] is False
    assert protocol["sets"]["denoise_25/sample"]["noise"] == "uint8"
    assert json.loads((out / "config.json").read_text())["data_paths"]["noise"] == "uint8"


def test_evaluate_a_gray_run_under_either_noise_protocol(gray_run, capsys):
    out, model = gray_run
    capsys.readouterr()
    assert main(["evaluate", str(out), "--model", model, "--json"]) == 0
    own = json.loads(capsys.readouterr().out)
    assert own["protocol"]["channels"] == 1 and own["protocol"]["sets"]["denoise_25/sample"]["noise"] == "uint8"
    assert own["sets"] == read_history(out)[-1]["eval"]  # the run's own protocol, the run's own scores
    assert main(["evaluate", str(out), "--model", model, "--json", "--noise", "float", "--crop-border", "2"]) == 0
    floats = json.loads(capsys.readouterr().out)
    assert floats["protocol"]["sets"]["denoise_25/sample"]["noise"] == "float"
    assert floats["protocol"]["crop_border"] == 2
    assert floats["sets"]["denoise_25/sample"]["psnr"] != own["sets"]["denoise_25/sample"]["psnr"]
    one_error_line(capsys, ["evaluate", str(out), "--model", model, "--y-channel"], "y_channel", "1 channel")


def test_restore_writes_gray_images_from_colour_files(gray_run, tmp_path):
    out, model = gray_run
    colour = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "photo.png")
    assert main(["restore", str(out), str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--model", model]) == 0
    with Image.open(tmp_path / "out" / "photo.png") as written:
        assert written.mode == "L" and written.size == (20, 24)
        restored = torch.from_numpy(np.array(written)).float()
    from lotteryir.checkpoints import load_checkpoint
    from lotteryir.runs import read_config, round_ticket_path

    net = load_checkpoint(round_ticket_path(out, None), register_import_path(read_config(out).model), "default").model
    luma = to_grayscale(torch.from_numpy(colour).permute(2, 0, 1).contiguous()).float() / 255
    with torch.no_grad():
        expected = (net.eval()(luma[None])[0, 0].clamp(0, 1) * 255).round()
    assert torch.equal(restored, expected)


def test_export_onnx_and_web_take_one_channel(gray_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from lotteryir.deploy import onnx_session, read_onnx_metadata

    out, model = gray_run
    target = tmp_path / "gray.onnx"
    assert main(["export", str(out), "--format", "onnx", "-o", str(target), "--model", model]) == 0
    assert "1-channel images" in capsys.readouterr().out
    assert read_onnx_metadata(target)["channels"] == "1"
    assert onnx_session(target).get_inputs()[0].shape[1] == 1
    assert main(["web", str(out), "-o", str(tmp_path / "site"), "--model", model]) == 0
    assert json.loads((tmp_path / "site" / "config.json").read_text())["channels"] == 1


def test_a_network_of_another_channel_count_is_refused_in_every_command(gray_run, tmp_path, capsys):
    out, model = gray_run
    two = model.replace(":Net", ":two")
    weights = tmp_path / "two.safetensors"
    save_file(build_model(register_import_path(two)).state_dict(), str(weights))
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(image)
    for argv in (
        ["evaluate", str(weights), "--model", two],
        ["restore", str(weights), str(image), "-o", str(tmp_path / "r"), "--model", two],
        ["export", str(weights), "--format", "onnx", "-o", str(tmp_path / "m.onnx"), "--model", two],
        ["web", str(weights), "-o", str(tmp_path / "site"), "--model", two],
        ["prune", "--model", two, "--rounds", "1", *OWN_MODEL_ARGS, "--out", str(tmp_path / "run")],
    ):
        line = one_error_line(capsys, argv, "takes 2-channel images", "1 (grayscale) or 3 (RGB)")
        assert "Given groups" not in line and "expected input" not in line, argv[0]  # not torch's raw message
    assert not any((tmp_path / name).exists() for name in ("r", "m.onnx", "site", "run"))
