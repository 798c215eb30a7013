"""lotteryir.data: image I/O, degradations, datasets, folder layouts and named recipes.

Knows images, nothing about models or pruning. Items are dicts
``{"input": CxHxW float, "target": CxHxW float, "task": str, "name": str}`` with values in [0, 1]
(C = 3 for RGB, 1 for grayscale). Its names load on first use, so ``lotteryir.data.options``
(what ``--help`` shows) is read without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .errors import DataError
    from .io import read_image, write_image
    from .recipes import Recipe, RecipeInfo, available_recipes, get_recipe
    from .tasks import ALL_TASKS, DENOISE_TASKS, noise_sigma, task_family

_SOURCES = {
    "DataError": ".errors",
    "read_image": ".io",
    "write_image": ".io",
    "Recipe": ".recipes",
    "RecipeInfo": ".recipes",
    "available_recipes": ".recipes",
    "get_recipe": ".recipes",
    "ALL_TASKS": ".tasks",
    "DENOISE_TASKS": ".tasks",
    "noise_sigma": ".tasks",
    "task_family": ".tasks",
}

__all__ = [
    "ALL_TASKS",
    "DENOISE_TASKS",
    "DataError",
    "Recipe",
    "RecipeInfo",
    "available_recipes",
    "get_recipe",
    "noise_sigma",
    "read_image",
    "task_family",
    "write_image",
]

__getattr__ = lazy_getattr(__name__, _SOURCES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
