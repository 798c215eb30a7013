"""The Recipe interface: training and test datasets for a set of tasks, plus checks and layout text."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from .datasets import PatchDataset
from .degrade import WEB_OPTIONS
from .errors import DataError
from .io import check_channels
from .mixing import MixedDataset
from .options import DEFAULT_NOISE, DEFAULT_WEB
from .source import ImageSource
from .tasks import IDENTITY, check_tasks, task_family


@dataclass(frozen=True)
class RecipeInfo:
    """What ``available_recipes()`` lists for each recipe."""

    name: str
    description: str
    tasks: tuple[str, ...]
    layout: str


class Recipe:
    """Training and test datasets for a set of tasks.

    ``channels`` is how its images are read (3: RGB, 1: grayscale, for a 1-channel network) and ``noise``
    how Gaussian noise is synthesized (a name of ``options.NOISE_PROTOCOLS``), ``web`` how the web task's
    inputs are (a name of ``options.WEB_DEGRADATIONS``), for training and testing alike.
    """

    name: str = ""
    description: str = ""
    tasks: list[str]
    default_repeats: dict[str, int] = {}
    identity_repeat: int = 0  # repeat factor of identity pairs (input = clean image) in the default mix
    channels: int = 3
    noise: str = DEFAULT_NOISE
    web: str = DEFAULT_WEB

    def reading(self, channels: int) -> Recipe:
        """This recipe reading its images with ``channels`` channels (1: grayscale, 3: RGB); a copy."""
        other = copy.copy(self)
        other.channels = check_channels(channels)
        return other

    def degrade_options(self, task: str) -> dict[str, Any]:
        """What a task's synthetic degradation is given: the noise protocol for the denoising tasks, the
        named web degradation's settings for the web task."""
        family = task_family(task)
        if family == "denoise":
            return {"quantize": self.noise == "uint8"}
        if family == "web":
            return dict(WEB_OPTIONS[self.web])
        return {}

    def train_dataset(
        self,
        patch_size: int = 64,
        seed: int = 0,
        tasks: list[str] | None = None,
        *,
        repeats: dict[str, int] | None = None,
        weights: dict[str, float] | None = None,
        length: int | None = None,
        identity: int | None = None,
    ) -> MixedDataset:
        """Random training patches of the selected tasks, mixed by repeat factors (default) or weights.

        ``identity`` (default: :meth:`identity_for` the selected tasks) adds pairs whose input is the
        clean patch, repeated that many times per image; with ``weights`` they join only if weighted.
        """
        selected = check_tasks(tasks if tasks is not None else self.tasks, self.tasks)
        sources: dict[Any, ImageSource] = {}  # the three sigmas share one decoded source
        parts = {
            t: PatchDataset(self._train_source(t, sources), t, patch_size, seed, self.degrade_options(t))
            for t in selected
        }
        n_identity = self.identity_for(selected) if identity is None else int(identity)
        if n_identity < 0:
            raise DataError(f"identity repeat must be >= 0, got {n_identity}")
        with_identity = n_identity > 0 and (weights is None or IDENTITY in weights)
        if with_identity:
            parts[IDENTITY] = PatchDataset(self._identity_source(sources), IDENTITY, patch_size, seed)
        if weights is None:
            if repeats is None:
                repeats = {t: r for t, r in self.default_repeats.items() if t in parts}
            if with_identity:
                repeats = {**repeats, IDENTITY: n_identity}
        return MixedDataset(parts, seed=seed, repeats=repeats, weights=weights, length=length)

    def identity_for(self, tasks: list[str]) -> int:
        """The repeat factor of identity pairs in the default mix of ``tasks`` (``identity_repeat``)."""
        return self.identity_repeat

    def test_sets(self, tasks: list[str] | None = None) -> dict[str, Dataset]:
        """Whole-image test sets with fixed degradations, keyed '<task>/<dataset>'."""
        raise NotImplementedError

    def check(self, tasks: list[str] | None = None, *, train: bool = True) -> list[str]:
        """Problems with the data of ``tasks`` (default: all), precisely; an empty list means ready.

        ``train=False`` checks the test data only (what evaluation reads).
        """
        return []

    def remedy(self, tasks: list[str] | None = None, *, train: bool = True) -> str:
        """How to leave out or replace the folders :meth:`check` finds missing ('' when none is)."""
        return ""

    def describe(self) -> str:
        """The expected folder layout."""
        raise NotImplementedError

    def info(self) -> RecipeInfo:
        """Name, description, tasks and layout text, as available_recipes() lists them."""
        return RecipeInfo(self.name, self.description, tuple(self.tasks), self.describe())

    def _train_source(self, task: str, cache: dict[Any, ImageSource]) -> ImageSource:
        """The clean or paired training images of a task (``cache`` shares sources between tasks)."""
        raise NotImplementedError

    def _identity_source(self, cache: dict[Any, ImageSource]) -> ImageSource:
        """Clean training images for identity pairs."""
        raise DataError(f"the {self.name!r} recipe has no clean training images for identity pairs (identity=0)")
