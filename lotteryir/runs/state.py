"""The pruner's state inside a run: checked file by file on load, swapped in whole on save."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .._files import temporary_dir
from .._finite import tensor_list
from ..pruning import IterativeMagnitudePruner
from ..pruning.state import NonFiniteStateError
from .errors import RunError
from .layout import PRUNER_STATE_FILE, RunLayout


def load_pruner_state(pruner: IterativeMagnitudePruner, state: Path, run_dir: Path) -> None:
    """Load ``state`` into ``pruner``; a missing or damaged file is named (each is checked before the pruner reads it).

    Nothing else holds what these files hold (the weights, the rewind point), so the advice is a backup.
    """
    from safetensors import safe_open

    advice = f"restore it from a backup, or start again with a new --out ({run_dir} is left as it is)"
    plural = advice.replace("restore it", "restore them")
    meta_path = state / PRUNER_STATE_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{meta_path} is damaged ({e}); {advice}") from e
    missing = [state / n for n in _expected_files(meta) if not (state / n).is_file()]
    if missing:  # the pruner would go on without them (a missing model file means freshly built weights)
        listed = ", ".join(map(str, missing))
        raise RunError(
            f"{listed} {'is' if len(missing) == 1 else 'are'} missing; {advice if len(missing) == 1 else plural}"
        )
    for path in sorted(state.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as e:  # noqa: BLE001 - safetensors raises its own types
            raise RunError(f"{path} is damaged ({e}); {advice}") from e
    try:
        pruner.load_state(state)
    except NonFiniteStateError as e:  # a run's trainer never lets such weights reach a commit
        raise RunError(
            f"{e.path} is damaged: it holds NaN or infinite values in {tensor_list(e.names)}; {advice}"
        ) from e
    except (ValueError, KeyError, RuntimeError) as e:
        raise RunError(f"the pruner state in {state} cannot be used ({e}); {advice}") from e


def _expected_files(meta: object) -> list[str]:
    """The files a saved state holds, by its ``pruner.json``: the model's weights once a round is committed."""
    if not isinstance(meta, dict):
        return []
    names = ["mask.safetensors"]
    names += ["model.safetensors"] if isinstance(meta.get("round"), int) and meta["round"] >= 0 else []
    names += ["rewind.safetensors"] if meta.get("has_rewind_point") else []
    return names + [f"rewind_step{s}.safetensors" for s in meta.get("kept_rewind_points") or []]


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
