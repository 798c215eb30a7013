"""Evaluate a restorer on test sets: per-set and per-image PSNR/SSIM, optionally saving restored images."""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from lotteryir.engine.device import pick_device
from lotteryir.engine.inference import restore_image
from lotteryir.engine.metrics import psnr, ssim

__all__ = ["ImageScore", "SetScore", "EvalResult", "evaluate", "sets_not_learned", "UNCHANGED_DB"]

log = logging.getLogger(__name__)

UNCHANGED_DB = 0.01
"""A set on which every restored image scores within this many dB of its degraded input was left as it came."""


@dataclass(frozen=True)
class ImageScore:
    """One test image's scores, and those of its degraded input (the reference every result needs)."""

    name: str
    psnr: float
    ssim: float
    input_psnr: float | None = None
    input_ssim: float | None = None


@dataclass
class SetScore:
    """One test set's mean scores and per-image values; ``label`` is '<task>/<dataset>'."""

    label: str
    task: str
    dataset: str
    psnr: float
    ssim: float
    images: list[ImageScore] = field(default_factory=list)
    input_psnr: float | None = None  # the degraded inputs' own scores, same images, same metric
    input_ssim: float | None = None
    # How the set's inputs were made, from its dataset's ``protocol`` (e.g. synthetic noise: uint8 or float).
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def gain(self) -> float | None:
        """PSNR gained over the degraded input (dB); negative means the restorer made it worse."""
        return None if self.input_psnr is None else self.psnr - self.input_psnr

    @property
    def did_not_learn(self) -> bool:
        """Every image restored to within :data:`UNCHANGED_DB` of its degraded input's PSNR.

        A trained restorer that scores so has not learned the set: it returns its input (the
        identity it may have started as), however many steps it took. False without input scores.
        """
        return bool(self.images) and all(
            i.input_psnr is not None and abs(i.psnr - i.input_psnr) <= UNCHANGED_DB for i in self.images
        )


@dataclass
class EvalResult:
    """Scores of every evaluated test set, keyed by label (e.g. 'denoise_25/BSD68')."""

    sets: dict[str, SetScore]
    y_channel: bool = False
    tile: int | None = None
    crop_border: int = 0
    channels: int | None = None  # of the images scored (1: grayscale, 3: RGB)

    def protocol(self) -> dict[str, Any]:
        """How the scores were made, as every results row records it: the metric's choices and each set's inputs."""
        return {
            "channels": self.channels,
            "y_channel": self.y_channel,
            "crop_border": self.crop_border,
            "clip": "[0, 1]",  # restored (and degraded) images are clipped before scoring, as PromptIR does
            "sets": {label: dict(s.protocol) for label, s in self.sets.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data."""
        return {
            "y_channel": self.y_channel,
            "tile": self.tile,
            "crop_border": self.crop_border,
            "channels": self.channels,
            "sets": {label: asdict(s) for label, s in self.sets.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict`."""
        sets = {}
        for label, s in data["sets"].items():
            images = [ImageScore(**i) for i in s["images"]]
            sets[label] = SetScore(**{**s, "images": images})
        return cls(
            sets=sets,
            y_channel=data.get("y_channel", False),
            tile=data.get("tile"),
            crop_border=data.get("crop_border", 0),
            channels=data.get("channels"),
        )

    def summary(self) -> dict[str, dict[str, float]]:
        """Label -> {"psnr", "ssim", "input_psnr", "input_ssim"} means, the table a report shows.

        With input scores a set also carries ``"did_not_learn"`` (:attr:`SetScore.did_not_learn`):
        the per-image verdict the means alone cannot give, kept for :func:`sets_not_learned`.
        """
        out: dict[str, dict[str, float]] = {}
        for label, s in self.sets.items():
            out[label] = {"psnr": s.psnr, "ssim": s.ssim}
            if s.input_psnr is not None and s.input_ssim is not None:
                out[label].update(input_psnr=s.input_psnr, input_ssim=s.input_ssim, did_not_learn=s.did_not_learn)
        return out


def evaluate(
    model: nn.Module,
    test_sets: Mapping[str, Dataset] | Any,
    *,
    y_channel: bool = False,
    crop_border: int = 0,
    tile: int | None = None,
    overlap: int = 32,
    save_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: Callable[[str, int, int, ImageScore], None] | None = None,
) -> EvalResult:
    """PSNR/SSIM of ``model`` on every test set (a mapping label -> dataset, or a recipe).

    Each item is restored whole (padded, or tiled with ``tile``), clipped to
    [0, 1] as the PromptIR evaluation does, and scored with :func:`psnr` and
    :func:`ssim`; its degraded input, clipped the same way, is scored beside it
    (``input_psnr``/``input_ssim``), so every result carries its reference. ``crop_border`` pixels are cut
    from each side before scoring; ``y_channel`` scores BT.601 luma (RGB images only). Items are loaded under a
    torch RNG seeded from (label, index), so even a dataset that draws its degradation from the global RNG
    gives the same inputs on every call; the caller's RNG state is untouched.
    With ``save_dir``, restored images go to ``save_dir/<label>/<name>.png``.
    ``progress(label, index, count, score)`` is called after each image.
    """
    from lotteryir.data import write_image  # deferred: only needed when saving

    sets_in = test_sets.test_sets() if hasattr(test_sets, "test_sets") else test_sets
    device = pick_device(device)
    model.to(device)
    results: dict[str, SetScore] = {}
    channels: int | None = None
    for label, dataset in sets_in.items():
        task, _, name = label.partition("/")
        scores: list[ImageScore] = []
        count = len(dataset)  # type: ignore[arg-type]
        for index in range(count):
            item = _load(dataset, label, index)
            channels = int(item["input"].shape[-3])
            if y_channel and channels != 3:
                raise ValueError(
                    f"{label}: y_channel scores the luma of RGB images, but these have {channels} channel(s); "
                    "a grayscale image is scored as it is (leave y_channel out)"
                )
            restored = restore_image(model, item["input"], tile=tile, overlap=overlap).clamp_(0.0, 1.0)
            target = item["target"].to(restored.device)
            degraded = item["input"].to(device=restored.device, dtype=restored.dtype).clamp(0.0, 1.0)
            score = ImageScore(
                name=str(item.get("name", index)),
                psnr=float(psnr(restored, target, y_channel=y_channel, crop_border=crop_border)[0]),
                ssim=float(ssim(restored, target, y_channel=y_channel, crop_border=crop_border)[0]),
                input_psnr=float(psnr(degraded, target, y_channel=y_channel, crop_border=crop_border)[0]),
                input_ssim=float(ssim(degraded, target, y_channel=y_channel, crop_border=crop_border)[0]),
            )
            scores.append(score)
            if save_dir is not None:
                write_image(restored.cpu(), Path(save_dir) / label / f"{Path(score.name).stem}.png")
            if progress is not None:
                progress(label, index, count, score)
        task = str(item.get("task", task)) if count else task
        results[label] = SetScore(
            label=label,
            task=task,
            dataset=name or label,
            psnr=_mean([s.psnr for s in scores]),
            ssim=_mean([s.ssim for s in scores]),
            images=scores,
            input_psnr=_mean([s.input_psnr for s in scores if s.input_psnr is not None]),
            input_ssim=_mean([s.input_ssim for s in scores if s.input_ssim is not None]),
            protocol=dict(getattr(dataset, "protocol", {}) or {}),
        )
        log.info("%s: PSNR %.2f dB, SSIM %.4f over %d images", label, results[label].psnr, results[label].ssim, count)
    return EvalResult(sets=results, y_channel=y_channel, tile=tile, crop_border=crop_border, channels=channels)


def sets_not_learned(scores: EvalResult | Mapping[str, Any]) -> list[str]:
    """The test sets a trained restorer left at its input (every image within :data:`UNCHANGED_DB` dB).

    ``scores`` is an :class:`EvalResult`, its ``to_dict()`` or ``summary()``, or a closure's metrics
    holding a summary under ``"eval"`` (as the shipped closure and ``RoundRecord.metrics`` do), so a
    custom closure that returns ``{"eval": evaluate(...).summary()}`` is checked the same way. Sets
    without per-image input scores are never named.
    """
    if isinstance(scores, EvalResult):
        return [label for label, s in scores.sets.items() if s.did_not_learn]
    if "eval" in scores and isinstance(scores["eval"], Mapping):
        scores = scores["eval"]
    if "sets" in scores and isinstance(scores["sets"], Mapping):  # EvalResult.to_dict()
        return sets_not_learned(EvalResult.from_dict(scores))
    return [label for label, s in scores.items() if isinstance(s, Mapping) and s.get("did_not_learn") is True]


def _load(dataset: Dataset, label: str, index: int) -> Mapping[str, Any]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(zlib.crc32(f"{label}#{index}".encode()))
        item = dataset[index]
    if not isinstance(item, Mapping):
        input_, target = item[0], item[1]
        item = {"input": input_, "target": target}
    return item


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan
