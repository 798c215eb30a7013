"""README's "Your own network" section runs as written: its code blocks, in order, in one namespace."""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import socket
from pathlib import Path

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


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 3)
    return text[start : end if end >= 0 else None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_your_own_network_section_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```(\w+)\n(.*?)```", _section("Your own network"), re.S)
    kinds = [kind for kind, _ in blocks]
    assert kinds.count("python") >= 6 and "bash" in kinds, kinds
    (tmp_path / "examples").mkdir()
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

    write_image(torch.rand(3, 40, 40), tmp_path / "photo.png")  # the reader's photograph

    namespace: dict = {"__name__": "readme"}
    for kind, code in blocks:
        if kind == "python":
            exec(compile(code, "README.md (Your own network)", "exec"), namespace)
        elif kind == "bash":
            for line in code.splitlines():
                line = line.split("#")[0].strip()
                if not line:
                    continue
                argv = shlex.split(line)
                assert argv[0] == "lotteryir", line
                extra = FAST_PRUNE if argv[1] == "prune" else []
                assert main(argv[1:] + extra) == 0, (line, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "round 3: density 0.512" in out
    assert "['', 'init', 'init', 'init', 'step:10', 'step:10']" in out
    assert "0.262" in out and "density 0.512" in out
    assert namespace["again"].adopted_level == 5
    from lotteryir.runs import read_history

    assert [h["round"] for h in read_history(tmp_path / "runs" / "mine")] == [0, 1, 2, 3]  # continued to 3
    assert (tmp_path / "restored" / "photo.png").is_file() and (tmp_path / "mine.safetensors").is_file()
    assert (tmp_path / "my_run" / "pruner.json").is_file() and (tmp_path / "my_ddp_run" / "pruner.json").is_file()
