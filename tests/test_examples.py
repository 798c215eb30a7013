"""The examples and the lottery-ticket benchmark run end to end with tiny settings (so they cannot rot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lotteryir
from lotteryir.data import write_image

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def test_wrap_your_own(tmp_path: Path) -> None:
    out = ok(
        run(
            "examples/wrap_your_own.py",
            "--steps",
            "4",
            "--rounds",
            "2",
            "--extend-to-step",
            "3",
            "--batch",
            "2",
            "--patch",
            "32",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        )
    )
    assert "round 2: density 0.640" in out and "rewound to init" in out
    assert "round 3: density 0.512" in out and "rewound to step:3" in out  # the extension
    assert "reload check passed" in out
    assert (tmp_path / "ticket.safetensors").is_file() and (tmp_path / "ticket_plain.safetensors").is_file()
    # Its own network on the command line.
    assert "wrap_your_own.py:ResidualDenoiser" in out and (tmp_path / "restored" / "noisy.png").is_file()


def test_restormer_lth(tmp_path: Path) -> None:
    out = ok(
        run(
            "examples/restormer_lth.py",
            "--steps",
            "3",
            "--rounds",
            "1",
            "--patch",
            "32",
            "--batch",
            "2",
            "--test-images",
            "1",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        )
    )
    assert "round 1: density 0.800" in out
    assert "ticket - dense:" in out
    assert (tmp_path / "restormer_tiny_denoise_25_ticket.safetensors").is_file()


def _mirl_tree(root: Path) -> None:
    """Two 40x40 images in every folder of the MIR-L layout (see lotteryir/data/folders.py)."""
    g = torch.Generator().manual_seed(0)

    def image(path: Path) -> None:
        write_image(torch.rand(3, 40, 40, generator=g), path)

    for folder in ("train/denoise/WED", "train/denoise/BSD400", "test/denoise/BSD68", "test/denoise/Urban100"):
        for i in range(2):
            image(root / folder / f"{i}.png")
    for folder, kind in (
        ("train/derain/Rain100L", "rainy"),
        ("test/derain/Rain100L", "rainy"),
        ("train/dehaze/OTS", "hazy"),
        ("test/dehaze/SOTS", "hazy"),
    ):
        for i in range(2):
            image(root / folder / "input" / f"{i}_{kind}.png")
            image(root / folder / "target" / f"{i}_gt.png")


def test_mirl_paper_runs_on_the_standard_layout(tmp_path: Path) -> None:
    _mirl_tree(tmp_path / "data")
    out = ok(
        run(
            "examples/mirl_paper.py",
            str(tmp_path / "data"),
            "--size",
            "tiny",
            "--steps",
            "2",
            "--rounds",
            "1",
            "--patch",
            "32",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
        )
    )
    assert "round 1: density 0.8000" in out
    assert (tmp_path / "run" / "ticket_round01.safetensors").is_file()
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 2


def test_mirl_paper_says_what_is_missing(tmp_path: Path) -> None:
    empty = run("examples/mirl_paper.py", str(tmp_path), "--size", "tiny", "--device", "cpu")
    assert empty.returncode == 2
    assert "train/denoise/WED" in empty.stderr and "test/dehaze/SOTS" in empty.stderr

    _mirl_tree(tmp_path / "data")
    for f in (tmp_path / "data" / "test" / "dehaze" / "SOTS" / "target").iterdir():
        f.unlink()
    partial = run("examples/mirl_paper.py", str(tmp_path / "data"), "--size", "tiny", "--device", "cpu")
    assert partial.returncode == 2
    assert "SOTS" in partial.stderr and "1 problem(s)" in partial.stderr


def test_lightning_lth_smoke(tmp_path: Path) -> None:
    pytest.importorskip("lightning.pytorch")
    out = ok(run("examples/lightning_lth.py", "--smoke", "--threads", "1", "--out", str(tmp_path)))
    assert "round 0: density 1.000" in out and "round 2: density 0.640" in out
    assert "reloaded outputs match: True" in out
    assert (tmp_path / "ticket.safetensors").is_file() and (tmp_path / "pruner").is_dir()
    ckpt = torch.load(tmp_path / "round2" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["callbacks"]["lotteryir.PruningCallback"]["round"] == 2
    assert any(k.endswith("weight_mask") for k in ckpt["state_dict"])
    loaded = lotteryir.load_checkpoint(tmp_path / "round2" / "last.ckpt")  # the one loader reads it
    assert (loaded.name, loaded.size, loaded.fmt) == ("mirl", "tiny", "lightning") and loaded.mask.density < 0.7
