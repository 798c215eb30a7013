"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One intra-op thread everywhere, subprocesses included: lotteryir's "auto" thread count honours
# OMP_NUM_THREADS, and runs compared bit for bit must use the same count.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Where a test does use several threads, idle OpenMP threads sleep instead of spinning: on a 2-core
# machine shared with other work, spinning threads took the cores from the one doing the work (a
# two-thread tiny training step went from ~0.1 s to ~7 s). It changes waiting, never results.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
# The published networks' keys, shapes and reference outputs ship with the repository
# (tests/reference, under 1 MB of numbers); LOTTERYIR_REFERENCE points elsewhere.
REFERENCE_DIR = Path(os.environ.get("LOTTERYIR_REFERENCE", REPO_ROOT / "tests" / "reference"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "fill.py").is_file():
        pytest.fail(f"reference files not found at {REFERENCE_DIR} (set LOTTERYIR_REFERENCE)")
    return REFERENCE_DIR


@pytest.fixture(autouse=True)
def _one_thread():
    # The suite uses tiny networks that gain nothing from intra-op threads; on a busy
    # 2-core machine OpenMP barriers made tiny steps ~100x slower with 2 threads.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished 2-round run of the tiny configuration, made once through the Python API."""
    from lotteryir.runs import PruningRun, RunConfig

    from .tiny_run import TINY

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    PruningRun(out, RunConfig(**TINY)).run()
    return out
