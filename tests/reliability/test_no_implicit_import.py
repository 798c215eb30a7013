"""Names read from files are never imported: every command on a run (or ticket) whose file names a
module with a side effect, each in a fresh process, and the side effect never happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lotteryir.cli import main
from lotteryir.data import write_image
from lotteryir.models import registry

from ..tiny_run import OWN_MODEL_ARGS

# Importing this module leaves a file named "imported" beside it: the side effect we watch for.
NET = """
import pathlib
pathlib.Path(__file__).with_name("imported").write_text("ran")

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
ARGS = OWN_MODEL_ARGS


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A genuine run of a user's file, and a copied mirl run whose config.json was edited to name a file."""
    root = tmp_path_factory.mktemp("noimport")
    (root / "user").mkdir()
    (root / "user" / "nets.py").write_text(NET)
    (root / "evil").mkdir()
    (root / "evil" / "evil.py").write_text(NET)
    genuine, edited = root / "genuine", root / "edited"
    assert (
        main(
            ["prune", "--model", str(root / "user" / "nets.py") + ":Net", "--rounds", "1", *ARGS, "--out", str(genuine)]
        )
        == 0
    )
    assert main(["prune", "--model", "mirl", "--size", "tiny", "--rounds", "1", *ARGS, "--out", str(edited)]) == 0
    config = json.loads((edited / "config.json").read_text())
    config["model"] = str(root / "evil" / "evil.py") + ":Net"
    (edited / "config.json").write_text(json.dumps(config))
    for name in [n for n in registry._REGISTRY if ":" in n]:
        del registry._REGISTRY[name]  # the test process forgets too
    (root / "user" / "imported").unlink()  # the prune above was asked for it by name
    write_image(torch.rand(3, 16, 16), root / "photo.png")
    return {"root": root, "genuine": genuine, "edited": edited}


def _commands(run: Path, root: Path, tag: str) -> dict[str, list[str]]:
    out = root / f"out-{tag}"
    return {
        "export": ["export", str(run), "-o", str(out / "ticket.safetensors")],
        "export onnx": ["export", str(run), "--format", "onnx", "-o", str(out / "model.onnx")],
        "report": ["report", str(run)],
        "report json": ["report", str(run), "--json"],
        "evaluate": ["evaluate", str(run)],
        "restore": ["restore", str(run), str(root / "photo.png"), "-o", str(out / "restored")],
        "web": ["web", str(run), "-o", str(out / "site")],
        "resumed prune": ["prune", "--rounds", "2", *ARGS, "--out", str(run)],
    }


# One fresh interpreter per run: it has imported nothing of the user's, then calls the CLI for each
# command in turn and looks for the side effect after each (a process per command cost ~20 starts).
DRIVER = """
import contextlib, io, json, sys
from pathlib import Path
from lotteryir.cli import main
from lotteryir.models import registry

commands, marker = json.loads(sys.argv[1]), Path(sys.argv[2])
results = {}
for label, args in commands.items():
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    results[label] = {"rc": rc, "stderr": stderr.getvalue(), "imported": marker.exists()}
    for name in [n for n in registry._REGISTRY if ":" in n]:
        del registry._REGISTRY[name]  # nothing a command registered may help the next one
    if marker.exists():
        break
print(json.dumps(results))
"""


@pytest.mark.parametrize("which", ["genuine", "edited"])
def test_no_command_imports_the_module_a_run_names(runs, which):
    root, run = runs["root"], runs[which]
    commands = _commands(run, root, which)
    # The exported ticket names the module too: loading it must not import it either.
    ticket = root / f"out-{which}" / "ticket.safetensors"
    # (Scored on one small test image: what is checked is the loading, not the scores.)
    small = ["--data-path", "max_images=1", "--data-path", "test_max_side=16", "--tasks", "denoise_25"]
    commands["evaluate ticket"] = ["evaluate", str(ticket), *small]
    marker = root / ("user" if which == "genuine" else "evil") / "imported"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands), str(marker)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    imported = [label for label, r in results.items() if r["imported"]]
    assert not imported and not marker.exists(), f"{imported[:1]} imported the module named in config.json"
    assert list(results) == list(commands)
    # Reading the run needs no code: export and report work; using the network needs --model.
    for label in ("export", "report", "report json"):
        assert results[label]["rc"] == 0, f"{label}: {results[label]['stderr']}"
    for label in ("export onnx", "evaluate", "restore", "web"):
        rc, stderr = results[label]["rc"], results[label]["stderr"]
        assert rc == 1 and "does not import code named inside a file" in stderr and "--model" in stderr, (label, stderr)
    rc, stderr = results["resumed prune"]["rc"], results["resumed prune"]["stderr"]
    assert rc == 1 and "different configuration" in stderr, stderr
    assert ticket.is_file()
    rc, stderr = results["evaluate ticket"]["rc"], results["evaluate ticket"]["stderr"]
    if which == "genuine":
        assert rc == 1 and "does not import code named inside a file" in stderr, stderr
    else:
        # The edited run's ticket was written before the edit and names "mirl": it loads, and still
        # nothing imports the file the edited config names.
        assert rc == 0, stderr


def test_the_python_api_does_not_import_a_run_config_either(runs):
    from lotteryir.runs import PruningRun

    marker = runs["root"] / "evil" / "imported"
    with pytest.raises(ValueError, match="register_import_path"):
        PruningRun(runs["edited"]).run()
    assert not marker.exists()
