"""The README's and every docs/*.md page's code blocks run as written: in order, one namespace per page.

``python`` blocks are executed; ``bash`` blocks are ``lotteryir`` command lines run through the CLI
(with the training budget shrunk). ``shell`` blocks (installs, the paper's data, several processes)
and ``text`` blocks (output) are shown, not run; any other fence language fails the test.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import socket
from pathlib import Path

import pytest
import torch

from lotteryir.cli import main

ROOT = Path(__file__).resolve().parents[1]
# Only the training budget shrinks for the test: the commands' own options are kept (later ones win).
FAST_PRUNE = [
    "--steps",
    "2",
    "--data-path",
    "max_images=2",
    "--tasks",
    "denoise_25",
    "--patch-size",
    "16",
    "--batch-size",
    "2",
    "--device",
    "cpu",
]
# evaluate scores fewer test images; what it computes is unchanged.
FAST_EVALUATE = ["--data-path", "max_images=2", "--tasks", "denoise_25"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN, SHOWN = {"python", "bash"}, {"shell", "text", "toml"}


def _blocks(text: str) -> list[tuple[str, str]]:
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
    unknown = [kind for kind, _ in blocks if kind not in RUN | SHOWN]
    assert not unknown, f"code blocks need a language from {sorted(RUN | SHOWN)}, got {unknown}"
    return blocks


def _run_blocks(blocks, where: str, tmp_path, monkeypatch, capsys) -> dict:
    """Run ``blocks`` in ``tmp_path`` as a reader would, with the environment a reader's machine has."""
    (tmp_path / "examples").mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples" / "wrap_your_own.py", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    # torch.compile's default backend generates C++ for minutes on a CPU; the graph is what matters here
    # (benchmarks/mask_overhead.py times the inductor build).
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    # The DDP block runs as a one-process group (tests/test_distributed.py runs two).
    for key, value in {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
    }.items():
        monkeypatch.setenv(key, value)
    from lotteryir.data import write_image

    write_image(torch.rand(3, 40, 40), tmp_path / "photo.png")  # the reader's photographs
    write_image(torch.rand(3, 40, 40), tmp_path / "photo.jpg")

    namespace: dict = {"__name__": "readme"}
    for kind, code in blocks:
        if kind == "python":
            exec(compile(code, where, "exec"), namespace)
        elif kind == "bash":
            for line in code.splitlines():
                line = line.split("#")[0].strip()
                if not line:
                    continue
                argv = shlex.split(line)
                assert argv[0] == "lotteryir", line
                extra = {"prune": FAST_PRUNE, "evaluate": FAST_EVALUATE}.get(argv[1], [])
                assert main(argv[1:] + extra) == 0, (line, capsys.readouterr().err)
    return namespace


def test_every_page_names_its_blocks():
    runnable = {page.name: [k for k, _ in _blocks(page.read_text())].count("python") for page in PAGES}
    assert runnable["your-own-network.md"] >= 7, runnable


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "your-own-network.md"], ids=lambda p: p.name)
def test_page_blocks_run(page, tmp_path, monkeypatch, capsys):
    blocks = [(k, c) for k, c in _blocks(page.read_text()) if k in RUN]
    _run_blocks(blocks, page.name, tmp_path, monkeypatch, capsys)
    if any(k == "bash" and "lotteryir export" in c for k, c in blocks):
        assert (tmp_path / "ticket.safetensors").is_file()


def test_your_own_network_page_runs(tmp_path, monkeypatch, capsys):
    blocks = _blocks((ROOT / "docs" / "your-own-network.md").read_text())
    kinds = [kind for kind, _ in blocks]
    assert kinds.count("python") >= 7 and "bash" in kinds, kinds
    namespace = _run_blocks(
        [(k, c) for k, c in blocks if k in RUN], "your-own-network.md", tmp_path, monkeypatch, capsys
    )
    out = capsys.readouterr().out
    assert "round 3: density 0.512" in out
    assert "['', 'init', 'init', 'init', 'step:10', 'step:10']" in out
    assert "0.262" in out and "density 0.512" in out
    assert "refused: random_reinit cannot re-draw gain" in out
    assert "['random_prune', 'random_reinit']" in out
    assert namespace["again"].adopted_level == 5
    assert tuple(namespace["restored"].shape) == (1, 3, 32, 32)
    from lotteryir.runs import read_history

    assert [h["round"] for h in read_history(tmp_path / "runs" / "mine")] == [0, 1, 2, 3]  # continued to 3
    assert (tmp_path / "restored" / "photo.png").is_file() and (tmp_path / "mine.safetensors").is_file()
    assert (tmp_path / "my_run" / "pruner.json").is_file() and (tmp_path / "my_ddp_run" / "pruner.json").is_file()
