"""Your own network by import path or entry point: building, listing, tickets, the command line."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lotteryir import IterativeMagnitudePruner, load_ticket, save_ticket
from lotteryir.cli import main
from lotteryir.models import UnregisteredModelError, available, build_model, register_import_path, registry

NET = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    """A two-layer residual restorer for tests."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.a = nn.Conv2d(3, width, 3, padding=1)
        self.b = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


def wide():
    return TinyNet(8)


not_a_factory = 3


def not_a_module():
    return "nope"
'''


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """An importable package ``usernets`` (with its module ``nets``) on sys.path, removed afterwards."""
    root = tmp_path / "site"
    (root / "usernets").mkdir(parents=True)
    (root / "usernets" / "__init__.py").write_text("")
    (root / "usernets" / "nets.py").write_text(NET)
    monkeypatch.syspath_prepend(str(root))
    _forget()
    yield root
    _forget()
    for name in [n for n in registry._REGISTRY if n.startswith(("usernets", str(tmp_path)))]:
        del registry._REGISTRY[name]


def _forget() -> None:
    # Each test's package lives in its own folder: drop the modules an earlier test imported.
    for name in [n for n in sys.modules if n == "usernets" or n.startswith("usernets.")]:
        del sys.modules[name]


def test_import_path_builds_your_class_and_your_function(package):
    assert register_import_path("usernets.nets:TinyNet") == "usernets.nets:TinyNet"
    net = build_model("usernets.nets:TinyNet")
    assert type(net).__name__ == "TinyNet" and net.a.out_channels == 4
    assert build_model(register_import_path("usernets.nets:wide")).a.out_channels == 8
    assert registry.sizes("usernets.nets:TinyNet") == ["default"]
    assert ("usernets.nets:TinyNet", "default") in {(m.name, m.size) for m in available()}


def test_a_file_path_works_too_and_is_registered_absolute(package, monkeypatch):
    monkeypatch.chdir(package / "usernets")
    name = register_import_path("nets.py:TinyNet")
    assert name == f"{(package / 'usernets' / 'nets.py').resolve()}:TinyNet"
    assert type(build_model(name)).__name__ == "TinyNet"
    assert type(build_model("nets.py:TinyNet")).__name__ == "TinyNet"  # the same file, found by its absolute path


def test_looking_up_an_import_path_never_imports_it(package):
    """Only register_import_path imports: building, sizes and signatures of an unregistered path refuse."""
    (package / "usernets" / "evil.py").write_text(
        "import pathlib; pathlib.Path(__file__).with_name('ran').touch()\nfrom usernets.nets import TinyNet\n"
    )
    for call in (
        lambda: build_model("usernets.evil:TinyNet"),
        lambda: registry.sizes("usernets.evil:TinyNet"),
        lambda: registry.signature("usernets.evil:TinyNet", "default"),
        lambda: registry.default_size("usernets.evil:TinyNet", "full"),
    ):
        with pytest.raises(UnregisteredModelError, match="register_import_path"):
            call()
    assert "usernets.evil" not in sys.modules and not (package / "usernets" / "ran").exists()


@pytest.mark.parametrize(
    "name, message",
    [
        ("usernets.nets:Missing", "has no attribute 'Missing'"),
        ("usernets.nope:TinyNet", "cannot import module 'usernets.nope'"),
        ("usernets.nets:not_a_factory", "not a class or function"),
        ("/no/such/file.py:Net", "no such file"),
        (":Net", "expected package.module:factory"),
    ],
)
def test_bad_import_paths_say_what_is_wrong(package, name, message):
    with pytest.raises(ValueError, match=message):
        register_import_path(name)


def test_a_factory_must_build_a_module(package):
    with pytest.raises(TypeError, match="built as a str, not an nn.Module"):
        build_model(register_import_path("usernets.nets:not_a_module"))


def test_a_ticket_of_your_model_is_never_imported_from_its_metadata(package, tmp_path):
    torch.manual_seed(0)
    net = build_model(register_import_path("usernets.nets:TinyNet"))
    pruner = IterativeMagnitudePruner(net, rate=0.5)
    pruner.prune()
    path = tmp_path / "ticket.safetensors"
    save_ticket(net, path, name="usernets.nets:TinyNet", size="default")
    del registry._REGISTRY["usernets.nets:TinyNet"]  # a new process: nothing imported yet
    with pytest.raises(ValueError, match=r"does not import code named inside a file.*--model usernets\.nets:TinyNet"):
        load_ticket(path)
    with pytest.raises(UnregisteredModelError):  # naming it in Python is not enough: register it
        load_ticket(path, name="usernets.nets:TinyNet")
    loaded = load_ticket(path, name=register_import_path("usernets.nets:TinyNet"))
    assert loaded.mask == pruner.mask
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(loaded.model.eval()(x), net.eval()(x), atol=1e-6)


def _dist_info(root: Path, value: str) -> None:
    info = root / "usernets_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: usernets-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[lotteryir.models]\n{value}\n")


def test_an_installed_package_registers_models_through_its_entry_point(package, monkeypatch):
    (package / "usernets" / "sizes.py").write_text(
        textwrap.dedent("""
        from usernets.nets import TinyNet
        SIZES = {"small": lambda: TinyNet(2), "large": lambda: TinyNet(16)}
    """)
    )
    _dist_info(package, "tinynet = usernets.nets:TinyNet\ntinysizes = usernets.sizes:SIZES\nbroken = usernets.nope:X")
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        assert type(build_model("tinynet")).__name__ == "TinyNet"
        assert registry.sizes("tinysizes") == ["small", "large"]
        assert build_model("tinysizes", "large").a.out_channels == 16
        assert "broken" not in registry.model_names()  # a broken plugin is skipped with a warning
    finally:
        for name in ("tinynet", "tinysizes"):
            registry._REGISTRY.pop(name, None)


def test_the_command_line_lists_installed_models(package, monkeypatch, capsys):
    _dist_info(package, "tinynet = usernets.nets:TinyNet")
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        assert main(["models"]) == 0
    finally:
        registry._REGISTRY.pop("tinynet", None)
    row = next(line for line in capsys.readouterr().out.splitlines() if "tinynet" in line)
    assert "default" in row and "A two-layer residual restorer" in row


def test_your_model_through_prune_evaluate_restore_and_export(package, tmp_path, capsys):
    from lotteryir.data import read_image, write_image

    spec = "usernets.nets:TinyNet"
    run = tmp_path / "run"
    args = [
        "--data-path",
        "max_images=2",
        "--tasks",
        "denoise_25",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--patch-size",
        "16",
        "--device",
        "cpu",
    ]
    assert main(["prune", "--model", spec, "--rounds", "1", *args, "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["model"] == spec
    capsys.readouterr()
    # From a run directory, the model must be named: it is not imported from config.json.
    del registry._REGISTRY[spec]  # as in a new process
    assert main(["evaluate", str(run)]) == 1
    assert f"--model {spec}" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--model", spec, "--json"]) == 0
    from_run = json.loads(capsys.readouterr().out)
    ticket = tmp_path / "ticket.safetensors"
    assert main(["export", str(run), "-o", str(ticket)]) == 0
    capsys.readouterr()
    assert (
        main(
            ["evaluate", str(ticket), "--model", spec, "--json", "--data-path", "max_images=2", "--tasks", "denoise_25"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["sets"] == from_run["sets"]
    write_image(torch.rand(3, 20, 24), tmp_path / "in.png")
    assert main(["restore", str(ticket), str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--model", spec]) == 0
    assert read_image(tmp_path / "out" / "in.png").shape == (3, 20, 24)
    assert main(["evaluate", str(run), "--model", "mirl"]) == 1
    assert "is a run of model 'usernets.nets:TinyNet', not 'mirl'" in capsys.readouterr().err
