"""4. Paths are resolved once: a run means the same data from any working directory."""

from __future__ import annotations

import json

import pytest
import torch

from lotteryir.cli import main
from lotteryir.data import write_image
from lotteryir.runs import RunConfig, read_config, read_history
from lotteryir.runs.config import resolved_from_dict


def _dataset(root, seed: int) -> None:
    """A denoise tree: two clean training images, one clean test image."""
    g = torch.Generator().manual_seed(seed)
    for name in ("a", "b"):
        write_image(torch.rand(3, 40, 40, generator=g), root / "train" / f"{name}.png")
    write_image(torch.rand(3, 32, 32, generator=g), root / "test" / "c.png")


def test_relative_data_means_the_same_data_from_anywhere(tmp_path, monkeypatch, capsys):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    _dataset(here / "data", seed=1)
    _dataset(elsewhere / "data", seed=2)  # same relative path, other images
    monkeypatch.chdir(here)
    args = [
        "prune",
        "--recipe",
        "denoise",
        "--data",
        "data",
        "--data-path",
        "denoise_train=train",
        "--data-path",
        "denoise_test=test",
        "--tasks",
        "denoise_25",
        "--size",
        "tiny",
        "--rounds",
        "0",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--patch-size",
        "32",
        "--device",
        "cpu",
        "--out",
        "run",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    root = (here / "data").resolve()
    assert f"recipe denoise at {root}" in first
    config = read_config(here / "run")
    assert config.data == str(root)
    assert config.data_paths == {
        "denoise_train": str(root / "train"),
        "denoise_test": str(root / "test"),
        "noise": "uint8",  # the noise protocol is recorded, the default included
    }
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(here / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sets"] == read_history(here / "run")[0]["eval"]


def test_recipe_options_are_stored_typed_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = RunConfig(
        recipe="mirl",
        data="~/x",
        rounds=1,
        data_paths={"derain_train": "/abs/rain", "dehaze_test": "rel/haze", "skip_bad": "yes"},
    ).resolved()
    home = str(tmp_path.home())
    assert c.data == f"{home}/x"
    assert c.data_paths == {
        "derain_train": "/abs/rain",
        "dehaze_test": f"{home}/x/rel/haze",
        "skip_bad": True,
        "noise": "uint8",  # mirl's denoising tasks take part
    }
    # What config.json stores reads back equal (resumes compare resolved configurations).
    assert resolved_from_dict(c.to_dict()) == c
    sample = RunConfig(rounds=1, data_paths={"max_images": "3"}).resolved()
    assert sample.data_paths == {"max_images": 3, "noise": "uint8", "web": "jpeg"}  # the sample has web
    with pytest.raises(ValueError, match="--data-path: skip_bad must be true or false"):
        RunConfig(recipe="mirl", data="/d", rounds=1, data_paths={"skip_bad": "maybe"}).resolved()
