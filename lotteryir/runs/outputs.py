"""Where commands other than ``prune`` may write: never inside a run, never over a file unasked.

``export``, ``report --figure``, ``evaluate --save-images`` and ``restore`` check their outputs
here before doing any work, so a refusal costs nothing and loses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .errors import RunError
from .layout import run_dir_containing

_SHOWN = 3


def _refuse_inside_run(path: Path, option: str) -> None:
    inside = run_dir_containing(path)
    if inside is not None:
        raise RunError(
            f"{option} {path} is inside the run directory {inside}, which only `lotteryir prune` writes; "
            "choose a path outside it"
        )


def check_output(path: str | os.PathLike, overwrite: bool = False, option: str = "-o") -> Path:
    """An output file: not inside a run directory, not a directory, not existing unless ``overwrite``."""
    path = Path(path)
    _refuse_inside_run(path, option)
    if path.is_dir():
        raise RunError(f"{option} {path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise RunError(f"{option} {path} exists; pass --overwrite to replace it")
    return path


def check_output_dir(path: str | os.PathLike, overwrite: bool = False, option: str = "-o") -> Path:
    """An output folder: not inside a run directory, not a file, and empty unless ``overwrite``."""
    path = Path(path)
    _refuse_inside_run(path, option)
    if path.exists() and not path.is_dir():
        raise RunError(f"{option} {path} is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise RunError(
            f"{option} {path} is not empty; pass --overwrite to write into it (existing files "
            "with the same names are replaced)"
        )
    return path


def restore_targets(
    images: Sequence[str | os.PathLike], out_dir: str | os.PathLike, overwrite: bool = False
) -> list[tuple[Path, Path]]:
    """(input, output) pairs for restoring ``images`` into ``out_dir`` as ``<stem>.png``.

    Refused before any work: two inputs that would share an output name, an output that is
    one of the inputs (even with ``overwrite``), an output folder inside a run directory, and
    outputs that exist already (unless ``overwrite``). The same input given twice counts once.
    """
    out_dir = Path(out_dir)
    _refuse_inside_run(out_dir, "-o")
    if out_dir.exists() and not out_dir.is_dir():
        raise RunError(f"-o {out_dir} is a file; give the folder to write the restored images into")
    pairs: list[tuple[Path, Path]] = []
    seen: dict[Path, Path] = {}  # resolved input -> as given
    claimed: dict[str, Path] = {}  # output name -> the input that claimed it
    for given in map(Path, images):
        key = given.resolve()
        if key in seen:
            continue
        seen[key] = given
        target = out_dir / f"{given.stem}.png"
        other = claimed.get(target.name)
        if other is not None:
            raise RunError(
                f"{other} and {given} would both be restored to {target}; restore them into "
                "different -o folders (or rename one)"
            )
        claimed[target.name] = given
        pairs.append((given, target))
    inputs = set(seen)
    for given, target in pairs:
        if target.resolve() in inputs:
            raise RunError(
                f"restoring {given} into {out_dir} would replace the input {seen[target.resolve()]}; "
                "choose another -o folder"
            )
    existing = [t for _, t in pairs if t.exists()]
    if existing and not overwrite:
        more = f", ... ({len(existing)} in all)" if len(existing) > _SHOWN else ""
        raise RunError(
            f"{len(existing)} output(s) exist already ({', '.join(map(str, existing[:_SHOWN]))}{more}); "
            "pass --overwrite to replace them, or choose another -o folder"
        )
    return pairs
