"""The one place that knows folder layouts: listing image folders and pairing inputs with targets.

Pairing layouts (``layout=`` names):

- ``same-name``: input/x.png <-> target/x.png (extensions may differ).
- ``mirl``: input/x_rainy.png <-> target/x_gt.png, input/x_hazy.jpg <-> target/x_gt.png (MIR-L).
- ``promptir``: rainy/rain-12.png <-> gt/norain-12.png (PromptIR's Rain100L).
- ``reside``: hazy/0001_0.8_0.2.jpg <-> clear/0001.png (RESIDE SOTS/OTS; many inputs may share a target).

``auto`` picks the layout that pairs the most files.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .io import IMAGE_EXTENSIONS, is_image_file

log = logging.getLogger(__name__)

MAX_LISTED = 10
# Sub-folder names of paired datasets seen in practice: (input, target).
PAIR_FOLDER_NAMES: tuple[tuple[str, str], ...] = (
    ("input", "target"),
    ("rainy", "gt"),
    ("hazy", "clear"),
    ("hazy", "gt"),
    ("synthetic", "original"),
    ("haze", "clear"),
    ("lq", "gt"),
    ("degraded", "clean"),
)
_INPUT_SUFFIX = re.compile(r"_(rainy|rain|hazy|haze|input|noisy|lq|degraded)$", re.IGNORECASE)
_TARGET_SUFFIX = re.compile(r"_(gt|clean|clear|target|hq|norain)$", re.IGNORECASE)


@dataclass(frozen=True)
class Pair:
    """An input image and its target."""

    input: Path
    target: Path

    @property
    def name(self) -> str:
        return self.input.stem


@dataclass(frozen=True)
class _Layout:
    input_key: Callable[[str], str | None]
    target_key: Callable[[str], str | None]
    many_to_one: bool = False


def _strip(pattern: re.Pattern[str]) -> Callable[[str], str | None]:
    return lambda stem: pattern.sub("", stem) if pattern.search(stem) else None


def _prefix(prefix: str) -> Callable[[str], str | None]:
    return lambda stem: stem[len(prefix) :] if stem.lower().startswith(prefix) else None


LAYOUTS: dict[str, _Layout] = {
    "same-name": _Layout(lambda s: s, lambda s: s),
    "mirl": _Layout(_strip(_INPUT_SUFFIX), _strip(_TARGET_SUFFIX)),
    "promptir": _Layout(_prefix("rain-"), _prefix("norain-")),
    "reside": _Layout(lambda s: s.split("_", 1)[0] if "_" in s else None, lambda s: s, many_to_one=True),
}


def list_images(folder: str | Path, *, recursive: bool = False, what: str = "images") -> list[Path]:
    """Sorted image files in a folder; other files are ignored and listed in a debug log.

    A missing folder, a file where a folder was expected, or a folder without images is a DataError.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"folder not found: {folder} (expected {what})")
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder} (expected a folder of {what})")
    entries = folder.rglob("*") if recursive else folder.iterdir()
    images: list[Path] = []
    ignored: list[Path] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            (images if is_image_file(entry) else ignored).append(entry)
    if ignored:
        log.debug(
            "ignored %d non-image file(s) in %s: %s",
            len(ignored),
            folder,
            ", ".join(p.name for p in sorted(ignored)[:MAX_LISTED]),
        )
    if not images:
        raise DataError(f"no images in {folder} (expected {what}; read: {' '.join(sorted(IMAGE_EXTENSIONS))})")
    return sorted(images)


def find_pair_folders(folder: str | Path) -> tuple[Path, Path] | None:
    """The (input, target) sub-folders of a paired dataset folder, or None if it holds no known pair."""
    folder = Path(folder)
    for input_name, target_name in PAIR_FOLDER_NAMES:
        if (folder / input_name).is_dir() and (folder / target_name).is_dir():
            return folder / input_name, folder / target_name
    return None


def pair_images(input_dir: str | Path, target_dir: str | Path, *, layout: str = "auto") -> list[Pair]:
    """Match every input image with its target by a named or detected layout.

    Inputs are listed recursively (RESIDE OTS splits its hazy images into part1..part4).
    Any input without target or target without input is an error listing up to 10 names.
    """
    inputs = list_images(input_dir, recursive=True, what="degraded input images")
    targets = list_images(target_dir, what="clean target images")
    if layout == "auto":
        layout = max(LAYOUTS, key=lambda name: _count_matches(LAYOUTS[name], inputs, targets))
    elif layout not in LAYOUTS:
        raise DataError(f"unknown pairing layout {layout!r}; expected auto or one of {', '.join(LAYOUTS)}")
    pairs, lonely_inputs, lonely_targets = _match(LAYOUTS[layout], inputs, targets, target_dir)
    if lonely_inputs or lonely_targets:
        parts = [f"cannot pair {input_dir} with {target_dir} (layout {layout!r}):"]
        if lonely_inputs:
            parts.append(f"{len(lonely_inputs)} input(s) without target: {_names(lonely_inputs)}")
        if lonely_targets:
            parts.append(f"{len(lonely_targets)} target(s) without input: {_names(lonely_targets)}")
        raise DataError(" ".join(parts))
    log.debug("paired %d images in %s and %s by layout %r", len(pairs), input_dir, target_dir, layout)
    return pairs


def _names(paths: list[Path]) -> str:
    shown = ", ".join(p.name for p in paths[:MAX_LISTED])
    return shown + (f", ... ({len(paths) - MAX_LISTED} more)" if len(paths) > MAX_LISTED else "")


def _count_matches(layout: _Layout, inputs: list[Path], targets: list[Path]) -> int:
    keys = {layout.target_key(p.stem) for p in targets} - {None}
    return sum(1 for p in inputs if layout.input_key(p.stem) in keys)


def _match(
    layout: _Layout, inputs: list[Path], targets: list[Path], target_dir: str | Path
) -> tuple[list[Pair], list[Path], list[Path]]:
    by_key: dict[str, Path] = {}
    for target in targets:
        key = layout.target_key(target.stem)
        if key is None:
            continue
        if key in by_key:
            raise DataError(
                f"ambiguous targets in {target_dir}: {by_key[key].name} and {target.name} both match the same inputs"
            )
        by_key[key] = target
    pairs, lonely_inputs, used = [], [], set()
    for path in inputs:
        key = layout.input_key(path.stem)
        if key is None or key not in by_key:
            lonely_inputs.append(path)
            continue
        if key in used and not layout.many_to_one:
            raise DataError(f"ambiguous inputs: {path} and another input both match target {by_key[key].name}")
        used.add(key)
        pairs.append(Pair(path, by_key[key]))
    lonely_targets = [t for t in targets if layout.target_key(t.stem) not in used]
    return pairs, lonely_inputs, lonely_targets
