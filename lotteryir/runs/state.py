"""The pruner's state inside a run: checked file by file on load, swapped in whole on save."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .._files import temporary_dir
from ..pruning import IterativeMagnitudePruner
from .errors import RunError
from .layout import PRUNER_STATE_FILE, RunLayout


def load_pruner_state(pruner: IterativeMagnitudePruner, state: Path, run_dir: Path) -> None:
    """Load ``state`` into ``pruner``; a damaged file is named (each is parsed before the pruner reads it)."""
    from safetensors import safe_open

    advice = f"restore it from a backup, or start again with a new --out ({run_dir} is left as it is)"
    names = (PRUNER_STATE_FILE, "mask.safetensors", "rewind.safetensors", "model.safetensors")
    for path in [state / n for n in names if n == PRUNER_STATE_FILE or (state / n).is_file()]:
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            else:
                with safe_open(str(path), framework="pt"):
                    pass
        except Exception as e:  # noqa: BLE001 - json and safetensors raise their own types
            raise RunError(f"{path} is damaged ({e}); {advice}") from e
    try:
        pruner.load_state(state)
    except (ValueError, KeyError, RuntimeError) as e:
        raise RunError(f"the pruner state in {state} cannot be used ({e}); {advice}") from e


def save_pruner_state(pruner: IterativeMagnitudePruner, layout: RunLayout, include_model: bool = True) -> None:
    """Write the pruner's state as ``pruner/``: several files change together, so a new folder is swapped in."""
    final, old = layout.pruner, layout.pruner_old
    tmp = temporary_dir(final)
    pruner.save_state(tmp, include_model=include_model)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
