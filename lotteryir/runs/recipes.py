"""A run's data recipe opened from its options: checked, typed, and its missing folders named with a remedy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..data import DataError, Recipe, get_recipe
from ..data.recipes import normalize_options


def recipe_options(recipe: str, data: str | None, paths: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe's --data-path options checked and typed (folders made absolute); errors name --data-path."""
    try:
        return normalize_options(recipe, data, paths)
    except DataError as e:
        raise ValueError(f"--data-path: {e}") from e


def open_recipe(
    recipe: str,
    data: str | None,
    paths: Mapping[str, Any],
    *,
    channels: int = 3,
    tasks: list[str] | None = None,
    train: bool = True,
) -> Recipe:
    """The recipe a run trains on or a command evaluates on, its options checked and its folders found.

    ``channels`` is how its images are read (the network's input channels). Only the folders of ``tasks``
    (default: all) are checked, and with ``train=False`` only their test folders (evaluation reads no
    training data). Raises DataError naming the first missing folders and how to leave them out or point
    elsewhere, before any image is read.
    """
    opened = get_recipe(recipe, root=data, channels=channels, **recipe_options(recipe, data, paths))
    problems = opened.check(tasks, train=train)
    if problems:
        more = f"; ... ({len(problems) - 3} more)" if len(problems) > 3 else ""
        remedy = opened.remedy(tasks, train=train)
        where = f" on {data}" if data else ""
        advice = f". {remedy}" if remedy else ""
        raise DataError(f"recipe {recipe!r} cannot run{where}: " + "; ".join(problems[:3]) + more + advice)
    return opened
