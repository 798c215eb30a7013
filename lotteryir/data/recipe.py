"""The Recipe interface: training and test datasets for a set of tasks, plus checks and layout text."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from .datasets import PatchDataset
from .mixing import MixedDataset
from .source import ImageSource
from .tasks import check_tasks


@dataclass(frozen=True)
class RecipeInfo:
    """What ``available_recipes()`` lists for each recipe."""

    name: str
    description: str
    tasks: tuple[str, ...]
    layout: str


class Recipe:
    """Training and test datasets for a set of tasks."""

    name: str = ""
    description: str = ""
    tasks: list[str]
    default_repeats: dict[str, int] = {}

    def train_dataset(
        self,
        patch_size: int = 64,
        seed: int = 0,
        tasks: list[str] | None = None,
        *,
        repeats: dict[str, int] | None = None,
        weights: dict[str, float] | None = None,
        length: int | None = None,
    ) -> MixedDataset:
        """Random training patches of the selected tasks, mixed by repeat factors (default) or weights."""
        selected = check_tasks(tasks if tasks is not None else self.tasks, self.tasks)
        sources: dict[Any, ImageSource] = {}  # the three sigmas share one decoded source
        parts = {t: PatchDataset(self._train_source(t, sources), t, patch_size, seed) for t in selected}
        if weights is None and repeats is None:
            repeats = {t: r for t, r in self.default_repeats.items() if t in parts}
        return MixedDataset(parts, seed=seed, repeats=repeats, weights=weights, length=length)

    def test_sets(self, tasks: list[str] | None = None) -> dict[str, Dataset]:
        """Whole-image test sets with fixed degradations, keyed '<task>/<dataset>'."""
        raise NotImplementedError

    def check(self) -> list[str]:
        """Problems with the data, precisely; an empty list means ready."""
        return []

    def describe(self) -> str:
        """The expected folder layout."""
        raise NotImplementedError

    def info(self) -> RecipeInfo:
        """Name, description, tasks and layout text, as available_recipes() lists them."""
        return RecipeInfo(self.name, self.description, tuple(self.tasks), self.describe())

    def _train_source(self, task: str, cache: dict[Any, ImageSource]) -> ImageSource:
        """The clean or paired training images of a task (``cache`` shares sources between tasks)."""
        raise NotImplementedError
