"""The deploy commands: export --format onnx, restore --sparse, web (site files, runtime copy, serving)."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest
import torch

from lotteryir import save_ticket
from lotteryir.cli import main
from lotteryir.data import read_image, write_image
from lotteryir.deploy import RUNTIME_FILES, read_onnx_metadata, serve_site

from .helpers import pruned

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def ticket(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ticket") / "mirl-tiny.safetensors"
    save_ticket(pruned("mirl", "tiny", rounds=10), path)
    return path


def test_export_onnx(ticket, tmp_path, capsys):
    target = tmp_path / "model.onnx"
    assert main(["export", str(ticket), "--format", "onnx", "-o", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "sparse initializers" in printed and "checked with onnxruntime" in printed
    meta = read_onnx_metadata(target)
    assert meta["lotteryir_model"] == "mirl/tiny" and abs(float(meta["density"]) - 0.8**10) < 0.01


def test_export_onnx_errors(ticket, tmp_path, capsys):
    for argv, expect in [
        (["export", str(ticket), "--format", "onnx", "-o", str(tmp_path / "a.onnx"), "--dtype", "fp16"], "--dtype"),
        (
            ["export", str(tmp_path / "missing.safetensors"), "--format", "onnx", "-o", str(tmp_path / "b.onnx")],
            "missing.safetensors",
        ),
        (["export", str(ticket), "--format", "onxx", "-o", str(tmp_path / "c.onnx")], "--format"),
    ]:
        assert main(argv) != 0
        assert expect in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))


def test_restore_sparse_matches_dense(ticket, tmp_path, capsys):
    image = tmp_path / "in.png"
    write_image(torch.rand(3, 33, 47), image)
    assert main(["restore", str(ticket), str(image), "-o", str(tmp_path / "dense")]) == 0
    assert main(["restore", str(ticket), str(image), "-o", str(tmp_path / "sparse"), "--sparse"]) == 0
    assert "CSR products" in capsys.readouterr().out
    a, b = read_image(tmp_path / "dense" / "in.png"), read_image(tmp_path / "sparse" / "in.png")
    assert (a - b).abs().max() <= 1 / 255 + 1e-6


def test_web_site_files(ticket, tmp_path, capsys):
    runtime = tmp_path / "dist"
    runtime.mkdir()
    for name in RUNTIME_FILES:
        (runtime / name).write_bytes(name.encode())
    site = tmp_path / "site"
    assert main(["web", str(ticket), "-o", str(site), "--runtime", str(runtime), "--tile", "64"]) == 0
    assert {p.name for p in site.iterdir()} == {"index.html", "restore.js", "config.json", "model.onnx", "runtime"}
    assert sorted(p.name for p in (site / "runtime").iterdir()) == sorted(RUNTIME_FILES)
    config = json.loads((site / "config.json").read_text())
    assert config["runtime"] == "runtime/" and config["tile"] == 64 and config["multiple"] == 8
    assert config["model_bytes"] == (site / "model.onnx").stat().st_size < config["dense_bytes"]
    assert config["name"] == "mirl/tiny" and abs(config["density"] - 0.8**10) < 0.01
    assert "restore.js" in (site / "index.html").read_text()
    capsys.readouterr()

    default = tmp_path / "cdn"
    assert main(["web", str(ticket), "-o", str(default)]) == 0
    assert json.loads((default / "config.json").read_text())["runtime"].startswith("https://")

    server = serve_site(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        with urllib.request.urlopen(base) as r:
            assert b"restore.js" in r.read()
        with urllib.request.urlopen(base + "runtime/ort-wasm-simd-threaded.mjs") as r:
            assert r.headers["Content-Type"] == "text/javascript"
        with urllib.request.urlopen(base + "runtime/ort-wasm-simd-threaded.wasm") as r:
            assert r.headers["Content-Type"] == "application/wasm"
    finally:
        server.shutdown()
        server.server_close()


def test_web_errors(ticket, tmp_path, capsys):
    for argv, expect in [
        (["web", str(ticket), "-o", str(tmp_path / "a"), "--runtime", str(tmp_path)], "ort.wasm.min.js"),
        (["web", str(ticket), "-o", str(tmp_path / "b"), "--tile", "64", "--overlap", "64"], "overlap"),
    ]:
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert expect in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(FileNotFoundError, match="index.html"):
        serve_site(tmp_path)
