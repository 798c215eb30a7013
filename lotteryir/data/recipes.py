"""Named data recipes: ``get_recipe(name, root, **paths)`` and ``available_recipes()``.

'sample' is built in (skimage.data, offline); 'mirl' is the paper's all-in-one tree; 'denoise',
'derain', 'dehaze' and 'web' are single-task recipes over folders (see folders.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import DataError
from .folders import FOLDER_RECIPES, FolderRecipe, expand_families
from .recipe import Recipe, RecipeInfo
from .sample import SampleRecipe
from .tasks import ALL_TASKS

PathLike = str | Path


def _sample(root: PathLike | None, **options: Any) -> SampleRecipe:
    if root is not None:
        raise DataError(f"the sample recipe is built in and takes no data root (got {root})")
    unknown = sorted(set(options) - {"max_images", "repeat", "split"})
    if unknown:
        raise DataError(f"unknown option(s) for the sample recipe: {', '.join(unknown)} (accepted: max_images, repeat, split)")
    return SampleRecipe(**options)


def get_recipe(name: str, root: PathLike | None = None, **paths: Any) -> Recipe:
    """A recipe by name: 'sample', 'mirl', 'denoise', 'derain', 'dehaze' or 'web'."""
    if name == "sample":
        return _sample(root, **paths)
    if name not in FOLDER_RECIPES:
        raise DataError(f"unknown data recipe {name!r}; available: sample, {', '.join(FOLDER_RECIPES)}")
    return FolderRecipe(FOLDER_RECIPES[name], root, **paths)


def available_recipes() -> list[RecipeInfo]:
    """Every recipe with its description, tasks and expected folder layout (for a CLI listing)."""
    infos = [RecipeInfo("sample", SampleRecipe.description, tuple(ALL_TASKS), SampleRecipe().describe())]
    for spec in FOLDER_RECIPES.values():
        infos.append(RecipeInfo(spec.name, spec.description, tuple(expand_families(spec.families)), spec.layout_text))
    return infos
