"""Images behind a dataset: clean images or (input, target) pairs, decoded once when small."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from .errors import DataError
from .io import check_channels, load_image, to_channels
from .layouts import Pair

log = logging.getLogger(__name__)

# Folders whose files add up to at most this are decoded once and kept in memory (as uint8);
# larger ones are read per item, which DataLoader workers parallelise.
DEFAULT_CACHE_LIMIT_MB = 256


class ImageSource:
    """Named items, each a clean image or an (input, target) pair, in compact (uint8) form.

    ``cache=None`` keeps the images in memory when the files total at most ``cache_limit_mb``.
    ``skip_bad=True`` drops unreadable files (and size-mismatched pairs) with a logged warning and
    counts them in ``skipped``; otherwise they raise DataError naming the file.
    ``size_mismatch="crop"`` centre-crops a pair to its common size instead of failing: some RESIDE
    downloads (ITS, SOTS indoor) ship 640x480 clear images, with a 10-pixel white border, for
    620x460 hazy ones. ``channels`` is how images are read: 3 (RGB) or 1 (grayscale, see io.to_grayscale).
    """

    def __init__(
        self,
        items: Sequence[tuple[str, Path | None, Path]],
        *,
        cache: bool | None = None,
        skip_bad: bool = False,
        cache_limit_mb: float = DEFAULT_CACHE_LIMIT_MB,
        size_mismatch: str = "error",
        channels: int = 3,
    ) -> None:
        self.channels = check_channels(channels)
        if size_mismatch not in ("error", "crop"):
            raise DataError(f"size_mismatch must be 'error' or 'crop', got {size_mismatch!r}")
        self.size_mismatch = size_mismatch
        if not items:
            raise DataError("no images to load")
        self._items = list(items)
        self.paired = self._items[0][1] is not None
        self.skip_bad = skip_bad
        self.skipped: list[tuple[Path, str]] = []
        self._memory: dict[Path, torch.Tensor] | None = None
        if cache is None:
            cache = self._disk_bytes() <= cache_limit_mb * 2**20
        if cache:
            self._preload()

    @classmethod
    def from_paths(cls, paths: Sequence[Path], **kwargs) -> ImageSource:
        """A source of clean images."""
        return cls([(p.stem, None, p) for p in paths], **kwargs)

    @classmethod
    def from_pairs(cls, pairs: Sequence[Pair], **kwargs) -> ImageSource:
        """A source of (input, target) pairs."""
        return cls([(p.name, p.input, p.target) for p in pairs], **kwargs)

    @classmethod
    def from_tensors(cls, named: Sequence[tuple[str, torch.Tensor]], channels: int = 3) -> ImageSource:
        """A source of clean in-memory images (1- or 3-channel, uint8 or float in [0, 1]), read with ``channels``."""
        source = cls.__new__(cls)
        source.channels = check_channels(channels)
        named = [(name, to_channels(image, channels)) for name, image in named]
        source._items = [(name, None, Path(f"<memory>/{name}")) for name, _ in named]
        source.paired, source.skip_bad, source.skipped, source.size_mismatch = False, False, [], "error"
        source._memory = {path: image for (_, _, path), (_, image) in zip(source._items, named)}
        if not source._items:
            raise DataError("no images to load")
        return source

    def __len__(self) -> int:
        return len(self._items)

    def name(self, index: int) -> str:
        return self._items[index][0]

    def load(self, index: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(input, target) of an item; input is None for clean images.

        When a streamed file turns out bad and skip_bad is set, the next good item stands in.
        """
        for step in range(len(self._items)):
            try:
                return self._load(self._items[(index + step) % len(self._items)])
            except DataError as exc:
                if not self.skip_bad:
                    raise
                log.warning("skipping: %s", exc)
        raise DataError("every image of this dataset failed to load")

    def _load(self, item: tuple[str, Path | None, Path]) -> tuple[torch.Tensor | None, torch.Tensor]:
        _, input_path, target_path = item
        target = self._image(target_path)
        if input_path is None:
            return None, target
        degraded = self._image(input_path)
        if degraded.shape != target.shape and self.size_mismatch == "crop":
            return _centre_crop(degraded, target)
        if degraded.shape != target.shape:
            raise DataError(
                f"pair sizes differ: {input_path} is {_size(degraded)} but {target_path} is {_size(target)}"
            )
        return degraded, target

    def _image(self, path: Path) -> torch.Tensor:
        if self._memory is not None:
            return self._memory[path]
        return load_image(path, self.channels)

    def largest_short_side(self, at_least: int | None = None) -> int:
        """The largest short side (min of height, width) among the targets, in pixels.

        Stops at the first image reaching ``at_least``; files are measured from their headers
        (Pillow reads only those), so this is quick even for large streamed folders.
        """
        largest = 0
        for _, _, path in self._items:
            if self._memory is not None and path in self._memory:
                side = min(self._memory[path].shape[-2:])
            else:
                side = _short_side_on_disk(path)
            largest = max(largest, side)
            if at_least is not None and largest >= at_least:
                break
        return largest

    def _disk_bytes(self) -> int:
        paths = {p for _, i, t in self._items for p in (i, t) if p is not None}
        return sum(p.stat().st_size for p in paths if p.exists())

    def _preload(self) -> None:
        self._memory = {}
        kept = []
        for item in self._items:
            try:
                for path in (item[1], item[2]):
                    if path is not None and path not in self._memory:
                        self._memory[path] = load_image(path, self.channels)
                self._load(item)
            except DataError as exc:
                if not self.skip_bad:
                    raise
                self.skipped.append((item[2] if item[1] is None else item[1], str(exc)))
                log.warning("skipping: %s", exc)
                continue
            kept.append(item)
        if self.skipped:
            log.warning("skipped %d of %d item(s) that could not be used", len(self.skipped), len(self._items))
        if not kept:
            raise DataError(f"none of the {len(self._items)} image(s) could be read")
        self._items = kept


def _centre_crop(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1])

    def cut(image: torch.Tensor) -> torch.Tensor:
        top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
        return image[..., top : top + height, left : left + width]

    return cut(a), cut(b)


def _size(image: torch.Tensor) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def _short_side_on_disk(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return min(img.size)
    except Exception:  # noqa: BLE001 - unreadable files are reported where they are loaded
        return 0
