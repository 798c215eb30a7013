"""Datasets: random training patches and whole test images, each item tagged with its task.

Every item is ``{"input": CxHxW float, "target": CxHxW float, "task": str, "name": str}`` (C: the
source's channels, 3 for RGB or 1 for grayscale).
Randomness comes from a generator derived from (seed, epoch, index), so an item is the same
in any worker, in any order, after a resume.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import crop, dihedral, pad_to_at_least, random_box, random_dihedral
from .degrade import WEB_OPTIONS, synthesize
from .errors import DataError
from .io import to_float
from .source import ImageSource
from .tasks import noise_sigma, task_family

Item = dict[str, Any]


def item_generator(*keys: int) -> torch.Generator:
    """A torch generator seeded from a tuple of non-negative integers, well mixed."""
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed((int(words[0]) << 32 | int(words[1])) >> 1)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Build an item with one intra-op thread, then restore the caller's setting.

    An item is many tiny tensor ops; fanning each out to OpenMP threads costs milliseconds per op
    on a busy 2-core machine (DataLoader workers already run with one thread).
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def name_key(text: str) -> int:
    """A stable integer for a string (Python's hash() changes between runs)."""
    return zlib.crc32(text.encode("utf-8"))


class PatchDataset(Dataset):
    """Random ``patch_size`` crops with one of the 8 flips/rotations, input and target alike.

    A clean source is degraded on the fly by the task's synthetic degradation (after cropping;
    the haze depth proxy still sees the crop's place in the whole image). Images smaller than
    the patch are reflect-padded (bottom/right) after degradation.
    """

    def __init__(
        self,
        source: ImageSource,
        task: str,
        patch_size: int = 64,
        seed: int = 0,
        degrade_options: dict[str, Any] | None = None,
    ) -> None:
        task_family(task)
        if patch_size < 1:
            raise DataError(f"patch size must be positive, got {patch_size}")
        self.source, self.task, self.patch_size, self.seed = source, task, patch_size, seed
        self.degrade_options = dict(degrade_options or {})
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops and degradations __getitem__ returns."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> Item:
        with single_threaded():
            return self.sample(index, item_generator(self.seed, self.epoch, index))

    def sample(self, index: int, generator: torch.Generator) -> Item:
        """The item for image ``index`` drawn with ``generator``."""
        degraded, target = self.source.load(index % len(self.source))
        height, width = target.shape[-2:]
        size = self.patch_size
        top, left = random_box(max(height, size), max(width, size), size, generator)
        k = random_dihedral(generator)
        target_patch = to_float(crop(target, top, left, size))
        if degraded is None:
            region = (top, left, height, width)
            input_patch = synthesize(self.task, target_patch, generator, region=region, **self.degrade_options)
        else:
            input_patch = to_float(crop(degraded, top, left, size))
        input_patch = dihedral(pad_to_at_least(input_patch, size), k).contiguous()
        target_patch = dihedral(pad_to_at_least(target_patch, size), k).contiguous()
        return {
            "input": input_patch,
            "target": target_patch,
            "task": self.task,
            "name": self.source.name(index % len(self.source)),
        }


class ImageDataset(Dataset):
    """Whole test images; a clean source gets a fixed degradation seeded per image name.

    ``degradations`` > 1 (synthesized sources only) scores every image under that many
    independently seeded degradations, image-major: item ``k * len(source) + i`` is image ``i``
    with seed ``seed + k``, named ``<stem>-d<k><ext>`` for ``k >= 1``. More draws of rain, haze
    strength or JPEG quality per photograph make a small test set's mean steadier.
    """

    def __init__(
        self,
        source: ImageSource,
        task: str,
        seed: int = 0,
        degrade_options: dict[str, Any] | None = None,
        degradations: int = 1,
    ) -> None:
        task_family(task)
        if degradations < 1:
            raise DataError(f"degradations must be at least 1, got {degradations}")
        self.source, self.task, self.seed = source, task, seed
        self.degrade_options = dict(degrade_options or {})
        self.degradations = degradations

    def __len__(self) -> int:
        return len(self.source) * self.degradations

    @property
    def protocol(self) -> dict[str, Any]:
        """How this set's inputs are made, as every results row records it (paired, or synthesized how)."""
        if self.source.paired:
            return {"degradation": "paired"}
        made: dict[str, Any] = {"degradation": "synthetic", "seed": self.seed, "degradations": self.degradations}
        if task_family(self.task) == "denoise":
            made["noise"] = "uint8" if self.degrade_options.get("quantize", True) else "float"
            made["sigma"] = noise_sigma(self.task)
        elif task_family(self.task) == "web":
            options = {**WEB_OPTIONS["jpeg"], **self.degrade_options}  # jpeg: add_web_degradation's defaults
            named = [n for n, o in WEB_OPTIONS.items() if all(options.get(k) == v for k, v in o.items())]
            made["web"] = named[0] if named else "custom"
            made["quality"], made["scale"] = options["quality"], options["scale"]
        return made

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < len(self):
            raise IndexError(index)
        with single_threaded():
            return self._item(index)

    def _item(self, index: int) -> Item:
        draw, image = divmod(index, len(self.source))
        degraded, target = self.source.load(image)
        name = self.source.name(image)
        target = to_float(target)
        if degraded is None:
            generator = item_generator(self.seed + draw, name_key(f"{self.task}/{name}"))
            degraded = synthesize(self.task, target, generator, **self.degrade_options)
            if draw:
                stem, dot, ext = name.rpartition(".")
                name = f"{stem}-d{draw}.{ext}" if dot else f"{name}-d{draw}"
        elif self.degradations > 1:
            raise DataError(f"{name}: degradations > 1 needs clean images to degrade; this test set is paired")
        else:
            degraded = to_float(degraded)
        return {"input": degraded.contiguous(), "target": target.contiguous(), "task": self.task, "name": name}
