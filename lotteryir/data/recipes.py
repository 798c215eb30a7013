"""Named data recipes: ``get_recipe(name, root, channels=3, **options)`` and ``available_recipes()``.

'sample' is built in (skimage.data, offline); 'mirl' is the paper's all-in-one tree; 'denoise',
'derain', 'dehaze' and 'web' are single-task recipes over folders (see folders.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import Recipe, RecipeInfo
from .errors import DataError
from .folders import FOLDER_RECIPES, FolderRecipe, expand_families
from .layouts import LAYOUTS
from .options import FAMILIES, FOLDER_KEYS, SAMPLE_OPTIONS, check_noise, check_web
from .sample import MIN_TEST_SIDE, SPLITS, SampleRecipe
from .tasks import ALL_TASKS

PathLike = str | Path


def _sample(root: PathLike | None, channels: int, **options: Any) -> SampleRecipe:
    if root is not None:
        raise DataError(f"the sample recipe is built in and takes no data root (got {root})")
    unknown = sorted(set(options) - set(_SAMPLE_OPTIONS))
    if unknown:
        raise DataError(
            f"unknown option(s) for the sample recipe: {', '.join(unknown)} (accepted: {', '.join(_SAMPLE_OPTIONS)})"
        )
    return SampleRecipe(**options, channels=channels)


_SAMPLE_OPTIONS = tuple(SAMPLE_OPTIONS)
_FOLDER_CHOICES = {"layout": ("auto", *LAYOUTS), "size_mismatch": ("error", "crop")}
_FOLDER_FLAGS = ("cache", "skip_bad")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def normalize_options(name: str, root: PathLike | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe's options checked and typed, with every folder made absolute.

    Values may be strings (as typed on a command line). A relative folder lies under ``root`` when
    one is given, as the recipe reads it, else under the current directory; either way the result
    means the same data from any working directory. A folder option may hold several folders (a list;
    several test folders are several test sets) or none (None or "": the recipe leaves that part out).
    Raises DataError naming the option at fault.
    """
    out: dict[str, Any] = {}
    if name == "sample":
        for key, value in options.items():
            if key not in _SAMPLE_OPTIONS:
                raise DataError(
                    f"unknown option {key!r} for the sample recipe (accepted: {', '.join(_SAMPLE_OPTIONS)})"
                )
            if isinstance(value, (list, tuple)):
                raise DataError(f"{key} is given {len(value)} times; give it once")
            if key == "noise":
                out[key] = check_noise(value)
            elif key == "web":
                out[key] = check_web(value)
            elif key == "split":
                if str(value) not in SPLITS:
                    raise DataError(f"split={value!r} is not one of {', '.join(SPLITS)}")
                out[key] = str(value)
            else:
                minimum = {"identity": 0, "test_max_side": MIN_TEST_SIDE}.get(key, 1)
                out[key] = _whole_number(key, value, minimum=minimum)
        return out
    if name not in FOLDER_RECIPES:
        raise DataError(f"unknown data recipe {name!r}; available: sample, {', '.join(FOLDER_RECIPES)}")
    folders = list(FOLDER_KEYS)
    for key, value in options.items():
        if key in folders:
            out[key] = None if value is None or value == "" else _absolute_folders(key, value, root)
        elif isinstance(value, (list, tuple)):
            raise DataError(f"{key} is given {len(value)} times; give it once")
        elif key == "noise":
            out[key] = check_noise(value)
        elif key == "web":
            out[key] = check_web(value)
        elif key in _FOLDER_CHOICES:
            if str(value) not in _FOLDER_CHOICES[key]:
                raise DataError(f"{key}={value!r} is not one of {', '.join(_FOLDER_CHOICES[key])}")
            out[key] = str(value)
        elif key in _FOLDER_FLAGS:
            out[key] = _flag(key, value)
        else:
            accepted = ", ".join([*folders, *_FOLDER_CHOICES, *_FOLDER_FLAGS, "noise", "web"])
            raise DataError(f"unknown option {key!r} for the {name} recipe (accepted: {accepted})")
    return out


def _whole_number(key: str, value: Any, minimum: int = 1) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < minimum:
        raise DataError(f"{key} must be a whole number >= {minimum}, got {value!r}")
    return int(text)


def _flag(key: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise DataError(f"{key} must be true or false, got {value!r}")


def _absolute_folders(key: str, value: Any, root: PathLike | None) -> Any:
    def one(p: Any) -> str:
        if not isinstance(p, (str, Path)) or not str(p).strip():
            raise DataError(f"{key} must be a folder path, got {p!r}")
        path = Path(p).expanduser()
        if not path.is_absolute():
            path = Path(root).expanduser() / path if root is not None else path
        return os.path.abspath(path)

    if isinstance(value, Mapping):
        return {str(label): one(p) for label, p in value.items()}
    if isinstance(value, (list, tuple)):
        return [one(p) for p in value]
    return one(value)


def recipe_tasks(name: str, options: Mapping[str, Any]) -> list[str]:
    """The tasks recipe ``name`` trains and tests with ``options`` (its --data-path keys), read from no disk.

    What ``get_recipe(name, root, **options).tasks`` holds, for deciding a run's tasks before its data is there.
    """
    if name == "sample":
        return list(ALL_TASKS)
    if name not in FOLDER_RECIPES:
        raise DataError(f"unknown data recipe {name!r}; available: sample, {', '.join(FOLDER_RECIPES)}")
    spec = FOLDER_RECIPES[name]

    def present(family: str, kind: str) -> bool:  # as FolderRecipe resolves it: given (None leaves out), or default
        key = f"{family}_{kind}"
        return bool(options[key]) if key in options else bool(getattr(spec, kind).get(family))

    return expand_families([f for f in FAMILIES if present(f, "train") or present(f, "test")])


def get_recipe(name: str, root: PathLike | None = None, *, channels: int = 3, **paths: Any) -> Recipe:
    """A recipe by name: 'sample', 'mirl', 'denoise', 'derain', 'dehaze' or 'web'.

    ``channels`` is how its images are read: 3 (RGB) or 1 (grayscale, for a 1-channel network);
    ``paths`` are its options (see ``options.SAMPLE_OPTIONS`` and ``options.FOLDER_OPTIONS``).
    """
    if name == "sample":
        return _sample(root, channels, **paths)
    if name not in FOLDER_RECIPES:
        raise DataError(f"unknown data recipe {name!r}; available: sample, {', '.join(FOLDER_RECIPES)}")
    return FolderRecipe(FOLDER_RECIPES[name], root, channels=channels, **paths)


def available_recipes() -> list[RecipeInfo]:
    """Every recipe with its description, tasks and expected folder layout (for a CLI listing)."""
    infos = [RecipeInfo("sample", SampleRecipe.description, tuple(ALL_TASKS), SampleRecipe().describe())]
    for spec in FOLDER_RECIPES.values():
        infos.append(RecipeInfo(spec.name, spec.description, tuple(expand_families(spec.families)), spec.layout_text))
    return infos
