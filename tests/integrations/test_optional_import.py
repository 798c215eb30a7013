"""Lightning is an optional extra: lotteryir never imports it, and its integration says how to get it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_import_lotteryir_does_not_import_lightning() -> None:
    code = (
        "import sys, lotteryir, lotteryir.cli, lotteryir.integrations\n"
        "found = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]\n"
        "assert not found, found\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_without_lightning_the_import_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightning", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.delitem(sys.modules, "lotteryir.integrations.lightning", raising=False)
    with pytest.raises(ImportError, match=r"pip install lotteryir\[lightning\]"):
        importlib.import_module("lotteryir.integrations.lightning")
