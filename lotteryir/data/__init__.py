"""lotteryir.data: image I/O, degradations, datasets, folder layouts and named recipes.

Knows images, nothing about models or pruning. Items are dicts
``{"input": 3xHxW float, "target": 3xHxW float, "task": str, "name": str}`` with values in [0, 1].
"""

from __future__ import annotations

from .errors import DataError
from .io import read_image, write_image
from .recipes import Recipe, RecipeInfo, available_recipes, get_recipe
from .tasks import ALL_TASKS, DENOISE_TASKS, noise_sigma, task_family

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
