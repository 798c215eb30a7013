"""`import lotteryir` is cheap and lazy; using it never loads torchvision's models or torch._dynamo.

Measured as an import graph in a fresh interpreter (wall time depends on the machine's load).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lotteryir

_CHILD = """
import json, sys, tempfile
from pathlib import Path
import lotteryir
bare = sorted(sys.modules)
for name in lotteryir.__all__:
    getattr(lotteryir, name)
import torch
from lotteryir.data import read_image, write_image
from lotteryir.data.degrade import jpeg_compress
from lotteryir.runs import RunConfig
folder = Path(tempfile.mkdtemp())
for suffix in (".png", ".jpg"):
    read_image(write_image(torch.rand(3, 8, 8), folder / ("x" + suffix)))
jpeg_compress(torch.rand(3, 8, 8), 50)
print(json.dumps({"bare": bare, "used": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def graph() -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_lotteryir_loads_no_torch(graph):
    assert [m for m in graph["bare"] if m.split(".")[0] in ("torch", "torchvision", "numpy")] == []


def test_the_api_and_image_io_load_neither_torchvision_models_nor_dynamo(graph):
    used = graph["used"]
    assert "torch" in used and "lotteryir.data.io" in used and "lotteryir.checkpoints" in used  # it was all used
    assert "torchvision.models" not in used
    assert "torch._dynamo" not in used
    assert not any(m == "torchvision" or m.startswith("torchvision.") for m in used)  # nothing needs it now


def test_the_public_names_are_the_defining_modules_objects():
    from lotteryir import checkpoints, engine, pruning

    assert set(lotteryir.__all__) <= set(dir(lotteryir))
    assert lotteryir.Mask is pruning.Mask and lotteryir.psnr is engine.psnr
    assert lotteryir.load_ticket is checkpoints.load_ticket
    assert lotteryir.data.__name__ == "lotteryir.data"
    with pytest.raises(AttributeError, match="no_such_name"):
        lotteryir.no_such_name  # noqa: B018


def test_runs_exports_every_name_it_lists():
    import lotteryir.runs as runs
    from lotteryir.runs.config import RunConfig

    assert all(getattr(runs, name) is not None for name in runs.__all__)
    assert runs.RunConfig is RunConfig
