"""Standard test sets as folders: several in one evaluate, no training folder, missing defaults named with a remedy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from lotteryir.cli import main
from lotteryir.data import DataError, get_recipe
from lotteryir.data.recipes import normalize_options, recipe_tasks
from lotteryir.models import build_model, register_import_path

from ..reliability.errors import one_error_line
from .test_grayscale import GRAY_NET


def _gray_folder(folder: Path, count: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(40, 216, (24, 20), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture
def gray_weights(tmp_path) -> tuple[Path, str]:
    (tmp_path / "graynets.py").write_text(GRAY_NET)
    model = f"{tmp_path / 'graynets.py'}:Net"
    torch.manual_seed(0)
    weights = tmp_path / "dncnn.safetensors"
    save_file(build_model(register_import_path(model)).state_dict(), str(weights))
    return weights, model


def test_several_test_folders_in_one_evaluate_with_no_training_folder(tmp_path, gray_weights, capsys):
    weights, model = gray_weights
    bsd68 = _gray_folder(tmp_path / "sets" / "BSD68", 2, seed=1)
    set12 = _gray_folder(tmp_path / "other" / "Set12", 3, seed=2)
    argv = ["evaluate", str(weights), "--model", model, "--recipe", "denoise", "--tasks", "denoise_25"]
    argv += ["--noise", "float", "--data-path", f"denoise_test={bsd68}", "--data-path", f"denoise_test={set12}"]
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert sorted(payload["sets"]) == ["denoise_25/BSD68", "denoise_25/Set12"]  # each set labelled by its folder
    assert payload["protocol"]["channels"] == 1
    for label in payload["sets"]:
        assert payload["protocol"]["sets"][label]["noise"] == "float"
        assert payload["protocol"]["sets"][label]["sigma"] == 25.0
    assert main([*argv, "--save-images", str(tmp_path / "saved")]) == 0
    assert len(list((tmp_path / "saved" / "denoise_25" / "Set12").glob("*.png"))) == 3


def test_a_root_with_only_some_default_test_folders_names_the_rest_and_how_to_leave_them_out(
    tmp_path, gray_weights, capsys
):
    weights, model = gray_weights
    root = tmp_path / "data"
    bsd68 = _gray_folder(root / "test" / "denoise" / "BSD68", 2, seed=3)  # no Urban100, no training folders
    argv = ["evaluate", str(weights), "--model", model, "--recipe", "denoise", "--data", str(root)]
    line = one_error_line(
        capsys,
        [*argv, "--tasks", "denoise_25"],
        f"folder not found: {root / 'test' / 'denoise' / 'Urban100'}",
        f"--data-path denoise_test={bsd68} uses only the test folders you have",
    )
    assert "train" not in line  # evaluate reads no training folder, so none is asked for
    assert main([*argv, "--tasks", "denoise_25", "--data-path", f"denoise_test={bsd68}", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["sets"]) == ["denoise_25/BSD68"]
    line = one_error_line(
        capsys,
        [
            "prune",
            "--model",
            model,
            "--recipe",
            "denoise",
            "--data",
            str(root),
            "--rounds",
            "1",
            "--out",
            str(tmp_path / "r"),
        ],
        "train/denoise/WED",
        "--data-path denoise_train=FOLDER names your own, or leave denoise out of --tasks",
    )


def test_folder_options_in_the_recipe():
    assert normalize_options("denoise", "/d", {"denoise_test": ["a/BSD68", "/x/Set12"], "derain_test": ""}) == {
        "denoise_test": ["/d/a/BSD68", "/x/Set12"],
        "derain_test": None,  # an empty value leaves that folder out
    }
    assert recipe_tasks("mirl", {"derain_train": None, "derain_test": None}) == [
        "denoise_15",
        "denoise_25",
        "denoise_50",
        "dehaze",
    ]
    with pytest.raises(DataError, match="both named 'BSD68'"):
        get_recipe("denoise", denoise_test=["/a/BSD68", "/b/BSD68"])
    with pytest.raises(DataError, match="max_images is given 2 times"):
        normalize_options("sample", None, {"max_images": [1, 2]})
