"""The browser page: a static site that restores images client-side with onnxruntime-web.

``build_site`` writes ``index.html`` and ``restore.js`` (package data, plain HTML and one
script), the model as ONNX and ``config.json``, which tells the page where the runtime
is (a public CDN by default, or files copied into the site for offline hosting).
``serve_site`` serves a folder on localhost for a quick look.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from torch import nn

from ..models.channels import input_channels
from ..pruning import atomic_write_text
from .onnx_export import OnnxExport, to_onnx

ORT_WEB_VERSION = "1.30.0"  # the onnxruntime-web release the page is tested with (tests/web/package.json)
DEFAULT_RUNTIME = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
"""Where the page loads onnxruntime-web from unless told otherwise: the pinned release on jsDelivr."""
# The WebAssembly-only build: its loader script and the SIMD module it fetches.
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
"""The onnxruntime-web files the page needs; ``--runtime`` copies these into the site."""
PAGE_FILES = ("index.html", "restore.js")
MODEL_FILE = "model.onnx"


@dataclass(frozen=True)
class Site:
    """A written site: its folder, the model export, and the page's configuration."""

    path: Path
    export: OnnxExport
    config: dict


def build_site(
    model: nn.Module,
    out_dir: str | os.PathLike,
    *,
    name: str,
    density: float,
    runtime_dir: str | os.PathLike | None = None,
    runtime_url: str = DEFAULT_RUNTIME,
    tile: int = 256,
    overlap: int = 32,
    overwrite: bool = True,
) -> Site:
    """Write the static restoration page for ``model`` into ``out_dir``.

    ``runtime_dir`` (onnxruntime-web's ``dist`` folder) is copied into ``out_dir/runtime``
    so the site needs nothing from outside; otherwise the page loads ``runtime_url``.
    Images larger than ``tile`` are restored in tiles overlapping by ``overlap`` pixels.
    Without ``overwrite`` no existing file of the site is replaced, even one written meanwhile
    by another process (FileExistsError naming it). A 1-channel network gets the picked image as its
    BT.601 luma (as lotteryir reads it) and shows its output as gray; ``config.json`` says ``channels``.
    """
    multiple = int(getattr(model, "multiple", 1))
    if tile < max(multiple, 8) or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= {max(multiple, 8)} and 0 <= overlap < tile; got tile={tile}, overlap={overlap}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    sources = _runtime_sources(Path(runtime_dir)) if runtime_dir is not None else []
    channels = input_channels(model)
    out.mkdir(parents=True, exist_ok=True)
    export = to_onnx(
        model,
        out / MODEL_FILE,
        channels=channels,
        metadata={"lotteryir_model": name, "density": f"{density:.6f}"},
        overwrite=overwrite,
    )
    page = resources.files("lotteryir.deploy") / "web"
    for filename in PAGE_FILES:
        atomic_write_text(out / filename, (page / filename).read_text(encoding="utf-8"), overwrite=overwrite)
    if sources:
        (out / "runtime").mkdir(exist_ok=True)
        for src in sources:
            shutil.copyfile(src, out / "runtime" / src.name)
        runtime_url = "runtime/"
    params = sum(p.numel() for p in model.parameters())
    config = {
        "model": MODEL_FILE,
        "runtime": runtime_url,
        "name": name,
        "density": density,
        "params": params,
        "model_bytes": export.bytes,
        "dense_bytes": export.dense_bytes,
        "multiple": multiple,
        "channels": channels,
        "tile": tile,
        "overlap": overlap,
    }
    atomic_write_text(out / "config.json", json.dumps(config, indent=2) + "\n", overwrite=overwrite)
    return Site(out, export, config)


def _runtime_sources(runtime_dir: Path) -> list[Path]:
    missing = [f for f in RUNTIME_FILES if not (runtime_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"--runtime {runtime_dir} lacks {', '.join(missing)}: point it at onnxruntime-web's dist folder "
            f"(npm install onnxruntime-web@{ORT_WEB_VERSION}; node_modules/onnxruntime-web/dist)"
        )
    return [runtime_dir / f for f in RUNTIME_FILES]


class _Handler(SimpleHTTPRequestHandler):
    # Module scripts and WebAssembly need these types; Python's table lacks .mjs on some systems.
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
    }

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass  # library code does not print; the CLI says where the site is


def serve_site(directory: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for ``directory`` on ``host:port`` (port 0 picks a free one); call ``serve_forever()``."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise FileNotFoundError(
            f"{directory} has no index.html; write the site first (lotteryir web ... -o {directory})"
        )
    handler = functools.partial(_Handler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)
