"""`restore` checks its options (the source, --model) before its outputs, and the advice is plain."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lotteryir import save_ticket
from lotteryir.cli import main
from lotteryir.data import write_image
from lotteryir.models import register_import_path, registry

NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))
"""


@pytest.fixture
def ticket(tmp_path) -> tuple[Path, str]:
    """A ticket of a user's network, written by a process that named it, read by one that did not."""
    (tmp_path / "nets.py").write_text(NET)
    name = register_import_path(str(tmp_path / "nets.py") + ":Net")
    model = registry.build_model(name)
    path = tmp_path / "ticket.safetensors"
    save_ticket(model, path, name=name, size="default")
    for key in [n for n in registry._REGISTRY if ":" in n]:
        del registry._REGISTRY[key]  # as a fresh process: nothing named by path is registered
    write_image(torch.rand(3, 16, 16), tmp_path / "photo.png")
    (tmp_path / "out").mkdir()
    write_image(torch.rand(3, 16, 16), tmp_path / "out" / "photo.png")  # an earlier call's output
    yield path, name
    for key in [n for n in registry._REGISTRY if ":" in n]:
        del registry._REGISTRY[key]


def _error(capsys, argv: list[str]) -> str:
    code = main(argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1, lines
    return lines[0]


def test_a_missing_model_is_named_before_existing_outputs(ticket, capsys):
    path, name = ticket
    line = _error(capsys, ["restore", str(path), str(path.parent / "photo.png"), "-o", str(path.parent / "out")])
    assert "exist already" not in line, line
    assert f"--model {name}" in line, line
    # plain advice for the command line: no Python call, no `name=` tail
    assert "Python" not in line and "name=" not in line and "register_import_path" not in line, line


def test_with_the_model_named_existing_outputs_are_still_refused(ticket, capsys):
    path, name = ticket
    out = path.parent / "out"
    before = (out / "photo.png").read_bytes()
    argv = ["restore", str(path), str(path.parent / "photo.png"), "-o", str(out), "--model", name, "--threads", "1"]
    line = _error(capsys, argv)
    assert "exist already" in line and "--overwrite" in line, line
    assert (out / "photo.png").read_bytes() == before
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "photo.png").read_bytes() != before
