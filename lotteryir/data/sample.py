"""The built-in sample set: real photographs shipped inside scikit-image's wheel, no download.

Only images that skimage.data loads offline are used (some of its images need pooch downloads).
The split is fixed by image. Training images are scaled to at most 512 px and test images to at
most 256 px on the long side, then rounded to 8 bits, so CPU evaluation is quick and the clean
targets are exact 8-bit images like those on disk.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .base import Recipe
from .datasets import ImageDataset
from .errors import DataError
from .io import check_channels
from .options import DEFAULT_NOISE, DEFAULT_WEB, check_noise, check_web
from .source import ImageSource
from .tasks import ALL_TASKS, check_tasks

# Names of skimage.data loaders that work offline; "motorcycle" is the left view of stereo_motorcycle.
# Left out: cat (= chelsea), clock (motion-blurred), logo/text/checkerboard/horse/phantom (graphics),
# microaneurysms and lfw_subset (tiny), and everything that needs a pooch download.
SAMPLE_TRAIN: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "brick",
    "grass",
    "camera",
    "cell",
    "page",
)
SAMPLE_TEST: tuple[str, ...] = ("chelsea", "motorcycle", "gravel", "moon", "coins")
# split="validation" holds these training photographs out and scores on them instead of the test
# photographs: defaults (learning rate, steps, task mix) are chosen there, never on the test set.
SAMPLE_VALIDATION: tuple[str, ...] = ("coffee", "grass", "camera")
SPLITS: tuple[str, ...] = ("test", "validation")
# Identity pairs (input = clean patch) per training photograph and epoch in a mix of several tasks,
# beside 8 of each task: a blind all-in-one network sees images that need little or none of what it
# learned on the others. A single task trains without them: there they are most of the mix, most of
# their pixels and the task's own untouched ones are exact ties, and under L1 those pin the residual
# at zero (derain and web trained alone returned their input exactly). Chosen on the validation split
# by benchmarks/sample_defaults.py.
SAMPLE_IDENTITY = 16
TRAIN_MAX_SIDE = 512
TEST_MAX_SIDE = 256
# The smallest test image (long side) the metrics accept: SSIM's 11 px Gaussian window must fit inside.
MIN_TEST_SIDE = 16


def load_sample_image(name: str, max_side: int) -> torch.Tensor:
    """One skimage.data image as a 3xHxW uint8 tensor, scaled to at most ``max_side``."""
    return _load(name, max_side).clone()


@functools.lru_cache(maxsize=64)
def _load(name: str, max_side: int) -> torch.Tensor:
    try:
        import skimage.data
    except ImportError as exc:  # a runtime dependency, but say so clearly if it is missing
        raise DataError("the sample recipe needs scikit-image (pip install scikit-image)") from exc
    try:
        array = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    except Exception as exc:  # pooch-backed images raise when offline
        raise DataError(f"skimage.data.{name} could not be loaded offline: {exc}") from exc
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"skimage.data.{name} is {array.dtype}, expected uint8")
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    tensor = tensor[:3].expand(3, -1, -1) if tensor.shape[0] < 3 else tensor[:3]
    return _fit(tensor.contiguous(), max_side)


def _fit(image: torch.Tensor, max_side: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    resized = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].round_().clamp_(0, 255).to(torch.uint8)


class SampleRecipe(Recipe):
    """The built-in set from skimage.data: runs offline, synthesizes every task."""

    name = "sample"
    description = "built-in photographs from scikit-image, all four degradations synthesized (no download)"

    def __init__(
        self,
        max_images: int | None = None,
        repeat: int = 8,
        split: str = "test",
        identity: int | None = None,
        degradations: int = 1,
        test_max_side: int = TEST_MAX_SIDE,
        *,
        channels: int = 3,
        noise: str = DEFAULT_NOISE,
        web: str = DEFAULT_WEB,
    ) -> None:
        if max_images is not None and max_images < 1:
            raise DataError(f"max_images must be at least 1, got {max_images}")
        if test_max_side < MIN_TEST_SIDE:
            raise DataError(f"test_max_side must be at least {MIN_TEST_SIDE}, got {test_max_side}")
        if split not in SPLITS:
            raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.split = split
        self.channels, self.noise = check_channels(channels), check_noise(noise)  # grayscale: the photos' luma
        self.web = check_web(web)
        self.degradations = degradations  # seeded degradations per test photograph
        # Smaller test images make a quick check (the test suite's runs) cheap: scoring is most of it.
        self.test_max_side = test_max_side
        if split == "validation":
            train = [n for n in SAMPLE_TRAIN if n not in SAMPLE_VALIDATION]
            self.train_names, self.test_names = train[:max_images], list(SAMPLE_VALIDATION[:max_images])
        else:
            self.train_names = list(SAMPLE_TRAIN[:max_images])
            self.test_names = list(SAMPLE_TEST[:max_images])
        self.tasks = list(ALL_TASKS)
        self.default_repeats = {t: repeat for t in self.tasks}
        # None: SAMPLE_IDENTITY when several tasks are mixed, none for one; a number: that many for any mix.
        self.identity_repeat = SAMPLE_IDENTITY if identity is None else identity
        self._identity_fixed = identity is not None

    def _train_source(self, task: str, cache: dict[Any, ImageSource]) -> ImageSource:
        if "train" not in cache:
            cache["train"] = ImageSource.from_tensors(
                [(n, load_sample_image(n, TRAIN_MAX_SIDE)) for n in self.train_names], self.channels
            )
        return cache["train"]

    def _identity_source(self, cache: dict[Any, ImageSource]) -> ImageSource:
        return self._train_source("identity", cache)

    def identity_for(self, tasks: list[str]) -> int:
        """Identity pairs in the default mix of ``tasks``: none for a single task unless ``identity`` was given."""
        return self.identity_repeat if self._identity_fixed or len(tasks) > 1 else 0

    def test_sets(self, tasks: list[str] | None = None) -> dict[str, Dataset]:
        selected = check_tasks(tasks if tasks is not None else self.tasks, self.tasks)
        source = ImageSource.from_tensors(
            [(n, load_sample_image(n, self.test_max_side)) for n in self.test_names], self.channels
        )
        dataset = "sample" if self.split == "test" else "sample-val"
        return {
            f"{t}/{dataset}": ImageDataset(
                source, t, degrade_options=self.degrade_options(t), degradations=self.degradations
            )
            for t in selected
        }

    def describe(self) -> str:
        return (
            "No folders: images come from skimage.data (offline).\n"
            f"  train ({len(self.train_names)}): {', '.join(self.train_names)} (long side <= {TRAIN_MAX_SIDE} px)\n"
            f"  {self.split} ({len(self.test_names)}): {', '.join(self.test_names)} "
            f"(long side <= {self.test_max_side} px), "
            "degraded with fixed per-image seeds\n"
            f"  split=validation trains without {', '.join(SAMPLE_VALIDATION)} and scores on them instead"
        )
