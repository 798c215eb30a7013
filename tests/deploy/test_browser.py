"""The web page in a real browser: headless Chromium restores an image as `lotteryir restore` does.

Needs node, Chromium and the pinned JavaScript packages of tests/web (``npm ci`` there).
Without them the test is skipped, saying what is missing; with LOTTERYIR_REQUIRE_BROWSER=1
(set by .ci/run) it fails instead. LOTTERYIR_SCREENSHOT=path keeps the page's screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lotteryir import save_ticket
from lotteryir.cli import main
from lotteryir.data import read_image, write_image
from lotteryir.data.degrade import add_gaussian_noise
from lotteryir.deploy import serve_site

from .helpers import pruned

WEB = Path(__file__).resolve().parents[1] / "web"
RUNTIME = WEB / "node_modules" / "onnxruntime-web" / "dist"


def _chromium() -> str | None:
    for candidate in (os.environ.get("LOTTERYIR_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _missing() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if _chromium() is None:
        missing.append("Chromium (apt-get install chromium, or LOTTERYIR_CHROMIUM=path)")
    for package in ("playwright-core", "onnxruntime-web"):
        if not (WEB / "node_modules" / package / "package.json").is_file():
            missing.append(f"{package} (cd tests/web && npm ci)")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        missing.append("onnxruntime (pip install -e '.[dev]')")
    return missing


@pytest.fixture(scope="module")
def browser_ready() -> str:
    missing = _missing()
    if missing:
        reason = "browser test needs " + ", ".join(missing)
        if os.environ.get("LOTTERYIR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (LOTTERYIR_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return _chromium()  # type: ignore[return-value]


def _serve(directory: Path):
    server = serve_site(directory, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def test_page_restores_like_lotteryir_restore(browser_ready, tmp_path, capsys):
    from skimage import data

    ticket = tmp_path / "ticket.safetensors"
    save_ticket(pruned("mirl", "tiny", rounds=10), ticket)
    photo = torch.from_numpy(data.astronaut()[100:140, 180:236].copy()).permute(2, 0, 1).float() / 255
    degraded = tmp_path / "noisy.png"
    write_image(add_gaussian_noise(photo, 25, torch.Generator().manual_seed(0)).clamp(0, 1), degraded)

    # Whole image at once, and in 2x2 tiles of 32 overlapping by 8: each against the CLI doing the same.
    cases = {"whole": ([], []), "tiled": (["--tile", "32", "--overlap", "8"], ["--tile", "32", "--overlap", "8"])}
    servers, jobs = [], []
    for case, (web_args, restore_args) in cases.items():
        site = tmp_path / f"site-{case}"
        assert main(["web", str(ticket), "-o", str(site), "--runtime", str(RUNTIME), *web_args]) == 0
        assert main(["restore", str(ticket), str(degraded), "-o", str(tmp_path / f"cli-{case}"), *restore_args]) == 0
        server, url = _serve(site)
        servers.append(server)
        shot = os.environ.get("LOTTERYIR_SCREENSHOT") if case == "whole" else None
        jobs.append(
            {
                "url": url,
                "image": str(degraded),
                "out": str(tmp_path / f"{case}.json"),
                "screenshot": shot or str(tmp_path / f"{case}.png"),
            }
        )
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    capsys.readouterr()
    try:
        run = subprocess.run(
            ["node", str(WEB / "browser_check.mjs"), str(tmp_path / "jobs.json")],
            cwd=WEB,
            env={**os.environ, "LOTTERYIR_CHROMIUM": browser_ready},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert run.returncode == 0, run.stderr[-3000:]

    noisy = (read_image(degraded) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy().astype(int)
    for case, job in zip(cases, jobs):
        page = json.loads(Path(job["out"]).read_text())
        assert page["state"] == "done", (page["status"], page["messages"])
        assert page["outside"] == []  # every request went to the local server: no CDN
        assert not [m for m in page["messages"] if m.startswith(("error", "pageerror"))], page["messages"]
        assert "restored in" in page["timing"] and "density 0.107" in page["model"]
        got = np.array(page["rgba"], dtype=np.uint8).reshape(page["height"], page["width"], 4)[..., :3].astype(int)
        cli = read_image(tmp_path / f"cli-{case}" / "noisy.png")
        expected = (cli * 255).round().to(torch.uint8).permute(1, 2, 0).numpy().astype(int)
        assert got.shape == expected.shape == (40, 56, 3)
        assert np.abs(got - expected).max() <= 1, case  # within 1/255 of lotteryir restore
        assert np.abs(got - noisy).max() > 5  # and it did restore something
        assert Path(job["screenshot"]).stat().st_size > 10_000


class _GrayNet(torch.nn.Module):
    """A 1-channel restorer (a residual 3x3 conv pair), as a grayscale denoiser is built."""

    multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.b = torch.nn.Conv2d(6, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))


def test_page_restores_a_colour_photo_as_gray_for_a_one_channel_network(browser_ready, tmp_path, capsys):
    """The page reads the photo's BT.601 luma, as `lotteryir restore` does, and shows the result as gray."""
    from skimage import data

    from lotteryir.deploy import build_site
    from lotteryir.engine import restore_image

    torch.manual_seed(0)
    net = _GrayNet().eval()
    photo = data.astronaut()[100:140, 180:236].copy()  # colour: the page must convert it
    image = tmp_path / "photo.png"
    Image.fromarray(photo).save(image)
    build_site(net, tmp_path / "site", name="gray/net", density=1.0, runtime_dir=RUNTIME)
    server, url = _serve(tmp_path / "site")
    job = {"url": url, "image": str(image), "out": str(tmp_path / "page.json"), "screenshot": str(tmp_path / "s.png")}
    (tmp_path / "jobs.json").write_text(json.dumps([job]))
    capsys.readouterr()
    try:
        run = subprocess.run(
            ["node", str(WEB / "browser_check.mjs"), str(tmp_path / "jobs.json")],
            cwd=WEB,
            env={**os.environ, "LOTTERYIR_CHROMIUM": browser_ready},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 0, run.stderr[-3000:]
    page = json.loads((tmp_path / "page.json").read_text())
    assert page["state"] == "done", (page["status"], page["messages"])
    assert "grayscale" in page["model"]
    got = np.array(page["rgba"], dtype=np.uint8).reshape(page["height"], page["width"], 4)[..., :3].astype(int)
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()  # shown as gray
    with torch.no_grad():
        expected = restore_image(net, read_image(image, channels=1)).clamp(0, 1)
    expected = (expected[0] * 255).round().numpy().astype(int)
    assert np.abs(got[..., 0] - expected).max() <= 1  # within 1/255 of lotteryir's grayscale reading
