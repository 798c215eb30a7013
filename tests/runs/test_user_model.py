"""Your own network on the command line: its file, its imports, its channels, and what a failure leaves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lotteryir.cli import main
from lotteryir.models.external import resolve_import_path

from ..reliability.errors import one_error_line
from ..tiny_run import OWN_MODEL_ARGS

NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d({channels}, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))
"""
# Fails in its first training step of round 0 (after the duration estimate's 3 steps and 1 image).
FAILS_IN_TRAINING = NET.replace(
    "    def forward(self, x):\n",
    "    calls = 0\n\n    def forward(self, x):\n"
    "        if self.training and torch.is_grad_enabled():\n"
    "            Net.calls += 1\n"
    "            if Net.calls > 3:\n"
    "                raise RuntimeError('boom in training')\n",
)
ARGS = OWN_MODEL_ARGS


def _net(folder: Path, text: str = NET.format(channels=3), name: str = "nets.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_model_file_is_stored_absolute_with_its_hash_and_resumes_from_another_folder(tmp_path, monkeypatch):
    nets = _net(tmp_path / "proj")
    monkeypatch.chdir(tmp_path / "proj")
    assert main(["prune", "--model", "nets.py:Net", "--rounds", "0", *ARGS, "--out", "run"]) == 0
    config = json.loads((tmp_path / "proj" / "run" / "config.json").read_text())
    assert config["model"] == f"{nets.resolve()}:Net"
    assert config["model_sha256"] == hashlib.sha256(nets.read_bytes()).hexdigest()
    # The same command from the parent folder names the same file: it resumes (here: grows by a round).
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "--model", "proj/nets.py:Net", "--rounds", "1", *ARGS, "--out", "proj/run"]) == 0
    lines = (tmp_path / "proj" / "run" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in lines] == [0, 1]


def test_a_changed_model_file_is_named_when_the_run_resumes(tmp_path, capsys):
    nets = _net(tmp_path / "proj")
    out = tmp_path / "run"
    assert main(["prune", "--model", f"{nets}:Net", "--rounds", "0", *ARGS, "--out", str(out)]) == 0
    before = (out / "history.jsonl").read_text()
    capsys.readouterr()
    nets.write_text(nets.read_text() + "\n# edited after the run started\n")
    line = one_error_line(
        capsys,
        ["prune", "--model", f"{nets}:Net", "--rounds", "1", *ARGS, "--out", str(out)],
        "nets.py changed since the run started",
    )
    assert str(nets.resolve()) in line and "different configuration" not in line
    assert (out / "history.jsonl").read_text() == before


def test_an_import_error_in_the_model_file_names_it_and_the_pythonpath(tmp_path, capsys):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "__init__.py").write_text("")
    (project / "models" / "blocks.py").write_text("WIDTH = 4\n")
    nets = _net(project / "scripts", "from models import blocks\n" + NET.format(channels=3))
    with pytest.raises(ValueError) as caught:
        resolve_import_path(f"{nets}:Net")
    message = str(caught.value)
    assert str(nets) in message and "No module named 'models'" in message
    assert f"PYTHONPATH={project}" in message  # the folder holding the package root, not the file's own
    line = one_error_line(
        capsys, ["prune", "--model", f"{nets}:Net", "--rounds", "0", *ARGS, "--out", str(tmp_path / "r")]
    )
    assert str(nets) in line and f"PYTHONPATH={project}" in line
    assert not (tmp_path / "r").exists()


def test_a_channel_mismatch_is_one_line_before_anything_is_written(tmp_path, capsys):
    nets = _net(tmp_path / "proj", NET.format(channels=2))  # images come as 1 (gray) or 3 (RGB) channels only
    out = tmp_path / "run"
    line = one_error_line(
        capsys,
        ["prune", "--model", f"{nets}:Net", "--rounds", "1", *ARGS, "--out", str(out)],
        "takes 2-channel images",
        "1 (grayscale) or 3 (RGB)",
    )
    assert "Given groups" not in line  # not torch's own message
    assert not out.exists(), "a refused run leaves no folder (no lock) behind"
    out.mkdir()  # a folder the user had is kept, and stays empty
    one_error_line(capsys, ["prune", "--model", f"{nets}:Net", "--rounds", "1", *ARGS, "--out", str(out)], "2-channel")
    assert out.is_dir() and list(out.iterdir()) == []


@pytest.mark.parametrize("existed", [False, True])
def test_a_run_failing_in_its_first_round_leaves_nothing_behind(tmp_path, capsys, existed):
    nets = _net(tmp_path / "proj", FAILS_IN_TRAINING.format(channels=3), name=f"failing_{existed}.py")
    out = tmp_path / "run"
    if existed:
        out.mkdir()
    assert main(["prune", "--model", f"{nets}:Net", "--rounds", "1", *ARGS, "--out", str(out)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "boom in training" in errors[0], errors  # (the progress bar shares stderr)
    if existed:
        assert out.is_dir() and list(out.iterdir()) == [], "the user's folder is kept, emptied of what the run wrote"
    else:
        assert not out.exists(), "the folder the run created is gone"
