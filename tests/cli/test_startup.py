"""The command line answers at once: its help loads typer and rich, never torch (measured as an import graph).

`import torch` alone takes ~2 s on the 2-core machine; `lotteryir --help` once took 4.3 s because the
package imported torch, torchvision's models and torch._dynamo before typer printed a word.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import typer

from lotteryir.cli import app

# Nothing of these may load before a command runs: each costs from 0.1 s (numpy) to seconds (torch).
HEAVY = ("torch", "torchvision", "numpy", "PIL", "matplotlib", "safetensors", "skimage")

_CHILD = """
import contextlib, io, json, sys
from lotteryir.cli import main
codes, texts = [], []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()) as text:
        codes.append(main(argv))
    texts.append(text.getvalue())
print(json.dumps({"codes": codes, "texts": texts, "modules": sorted(sys.modules)}))
"""


def _modules_after(*commands: list[str]) -> dict:
    """Run the CLI with each argv in one fresh interpreter; the exit codes, outputs and modules loaded."""
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(list(commands))], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


def test_every_help_answers_without_heavy_imports():
    commands = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"prune", "evaluate", "restore", "export", "report"} <= set(commands)
    argvs = [["--help"], *[[command, "--help"] for command in commands]]
    result = _modules_after(*argvs)
    assert result["codes"] == [0] * len(argvs)
    assert all("Usage: lotteryir" in text for text in result["texts"]), result["texts"]
    assert "--target-density" in result["texts"][1 + commands.index("prune")]  # the full help, not an error
    assert _heavy(result["modules"]) == []
    assert "lotteryir.cli.prune" in result["modules"]  # every command module was imported, and is light


def test_a_usage_error_answers_without_heavy_imports():
    """Typer's own checks (a bad value, a missing argument) reject the line before any command body runs."""
    result = _modules_after(["prune", "--rate", "half"], ["export"])
    assert result["codes"] == [2, 2]
    assert _heavy(result["modules"]) == []
