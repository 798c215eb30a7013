"""Small image files the data tests write themselves."""

from __future__ import annotations

from pathlib import Path

import torch

from lotteryir.data import write_image


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (40, 48), seed: int = 0) -> list[Path]:
    """Write random RGB images under ``folder`` with the given file names."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    paths = []
    for name in names:
        image = torch.rand(3, *size, generator=generator)
        if name.endswith(".bmp"):  # lotteryir writes PNG/JPEG only; WED ships BMP
            from PIL import Image

            Image.fromarray((image * 255).round().byte().permute(1, 2, 0).numpy()).save(folder / name)
            paths.append(folder / name)
        else:
            paths.append(write_image(image, folder / name))
    return paths
