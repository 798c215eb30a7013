"""All-in-one training: several task datasets behind one index, by repeat factors or sampling weights."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping

import torch
from torch.utils.data import Dataset

from .datasets import Item, PatchDataset, item_generator, single_threaded
from .errors import DataError

# MIR-L / PromptIR: the denoise list is repeated 3x for each sigma, Rain100L's 200 pairs 120x, OTS once.
MIRL_REPEATS: dict[str, int] = {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120, "dehaze": 1}


class MixedDataset(Dataset):
    """Tasks mixed in one dataset; each item keeps its task tag.

    With ``repeats`` (task -> factor, default 1) the epoch is each task's images repeated, as in
    MIR-L. With ``weights`` (task -> relative probability) each index draws its task by weight
    and an image uniformly; ``length`` then sets the epoch (default: the images of all tasks).
    Item ``i`` of epoch ``e`` uses a generator seeded from (seed, e, i).
    """

    def __init__(
        self,
        parts: dict[str, PatchDataset],
        *,
        seed: int = 0,
        repeats: dict[str, int] | None = None,
        weights: dict[str, float] | None = None,
        length: int | None = None,
    ) -> None:
        if not parts:
            raise DataError("no tasks to mix")
        if repeats is not None and weights is not None:
            raise DataError("give repeat factors or sampling weights, not both")
        self.parts = dict(parts)
        self.tasks = list(self.parts)
        self.seed = seed
        self.epoch = 0
        self._weights: torch.Tensor | None = None
        if weights is not None:
            _check_keys(weights, self.tasks, "weights")
            values = [float(weights.get(t, 0.0)) for t in self.tasks]
            if any(v < 0 for v in values) or sum(values) <= 0:
                raise DataError(f"sampling weights must be non-negative and not all zero, got {weights}")
            self._weights = torch.tensor(values, dtype=torch.float64)
            self._length = int(length) if length is not None else sum(len(p) for p in self.parts.values())
            self.repeats = None
        else:
            repeats = dict(repeats or {})
            _check_keys(repeats, self.tasks, "repeats")
            self.repeats = {t: int(repeats.get(t, 1)) for t in self.tasks}
            if any(r < 0 for r in self.repeats.values()):
                raise DataError(f"repeat factors must be non-negative, got {self.repeats}")
            sizes = [len(self.parts[t]) * self.repeats[t] for t in self.tasks]
            self._ends = list(torch.tensor(sizes).cumsum(0).tolist())
            if self._ends[-1] <= 0:
                raise DataError("the mixed dataset is empty (all repeat factors are zero)")
            self._length = self._ends[-1] if length is None else int(length)
        if self._length <= 0:
            raise DataError("the mixed dataset is empty (all repeat factors or weights are zero)")

    def __len__(self) -> int:
        return self._length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops and degradations __getitem__ returns."""
        self.epoch = int(epoch)
        for part in self.parts.values():
            part.set_epoch(epoch)

    def __getitem__(self, index: int) -> Item:
        if not 0 <= index < self._length:
            raise IndexError(index)
        with single_threaded():
            generator = item_generator(self.seed, self.epoch, index)
            task, local = self._locate(index, generator)
            return self.parts[task].sample(local, generator)

    def task_of(self, index: int) -> str:
        """The task of item ``index`` in the current epoch (without loading it)."""
        return self._locate(index, item_generator(self.seed, self.epoch, index))[0]

    def task_counts(self) -> dict[str, int]:
        """How many items of each task one epoch holds."""
        return dict(Counter(self.task_of(i) for i in range(self._length)))

    def _locate(self, index: int, generator: torch.Generator) -> tuple[str, int]:
        if self._weights is not None:
            part = int(torch.multinomial(self._weights, 1, generator=generator))
            task = self.tasks[part]
            return task, int(torch.randint(0, len(self.parts[task]), (), generator=generator))
        slot = index % self._ends[-1]
        part = bisect.bisect_right(self._ends, slot)
        start = self._ends[part - 1] if part else 0
        task = self.tasks[part]
        return task, (slot - start) % len(self.parts[task])


def _check_keys(given: Mapping[str, object], tasks: list[str], what: str) -> None:
    unknown = sorted(set(given) - set(tasks))
    if unknown:
        raise DataError(f"{what} name task(s) {', '.join(unknown)} that are not mixed here ({', '.join(tasks)})")
