"""Shared test fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
# The published networks' keys, shapes and reference outputs live beside the checkout
# (../shared/reference); LOTTERYIR_REFERENCE overrides the location.
REFERENCE_DIR = Path(os.environ.get("LOTTERYIR_REFERENCE", REPO_ROOT.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (REFERENCE_DIR / "fill.py").is_file():
        pytest.fail(f"reference files not found at {REFERENCE_DIR} (set LOTTERYIR_REFERENCE)")
    return REFERENCE_DIR


@pytest.fixture(autouse=True)
def _few_threads():
    # Two cores on CI: keep intra-op threads bounded so parallel helpers don't thrash.
    torch.set_num_threads(2)
    yield
