"""Training patches, test images, augmentation pairing, determinism and bad inputs."""

from __future__ import annotations

import logging

import pytest
import torch

from lotteryir.data import DataError, read_image, write_image
from lotteryir.data.augment import dihedral, pad_to_at_least
from lotteryir.data.datasets import ImageDataset, PatchDataset
from lotteryir.data.layouts import Pair, list_images, pair_images
from lotteryir.data.source import ImageSource

from .helpers import write_images


def _paired_source(tmp_path, size=(40, 48), **kwargs) -> ImageSource:
    """Pairs whose input is exactly half the target, so any crop/flip mismatch shows."""
    targets = write_images(tmp_path / "target", ["a.png", "b.png"], size=size)
    for path in targets:
        write_image(torch.round(read_image(path) * 255 / 2) / 255, tmp_path / "input" / path.name)
    return ImageSource.from_pairs(pair_images(tmp_path / "input", tmp_path / "target"), **kwargs)


def test_augmentation_is_applied_identically(tmp_path):
    dataset = PatchDataset(_paired_source(tmp_path), "derain", patch_size=16, seed=1)
    for index in range(len(dataset)):
        for epoch in range(6):
            dataset.set_epoch(epoch)
            item = dataset[index]
            assert item["input"].shape == item["target"].shape == (3, 16, 16)
            expected = torch.round(item["target"] * 255 / 2) / 255
            assert torch.allclose(item["input"], expected, atol=1e-6)


def test_eight_dihedral_transforms_are_distinct_and_paired():
    image = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3)
    outs = [dihedral(image, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    assert all(torch.equal(dihedral(image * 2, k), o * 2) for k, o in enumerate(outs))


def test_patches_are_deterministic_per_seed_epoch_index(tmp_path):
    paths = write_images(tmp_path, ["a.png", "b.png"], size=(50, 60))
    source = ImageSource.from_paths(paths)
    first = PatchDataset(source, "denoise_25", 24, seed=7)
    second = PatchDataset(source, "denoise_25", 24, seed=7)
    for index in (1, 0):  # any order
        assert torch.equal(first[index]["input"], second[index]["input"])
    first.set_epoch(1)
    assert not torch.equal(first[0]["input"], second[0]["input"])
    second.set_epoch(1)
    assert torch.equal(first[0]["input"], second[0]["input"])
    assert not torch.equal(PatchDataset(source, "denoise_25", 24, seed=8)[0]["input"], second[0]["input"])


def test_item_contract(tmp_path):
    source = ImageSource.from_paths(write_images(tmp_path, ["cat.png"]))
    item = PatchDataset(source, "web", 32)[0]
    assert set(item) == {"input", "target", "task", "name"}
    assert item["task"] == "web" and item["name"] == "cat"
    assert item["input"].dtype == torch.float32 and 0 <= item["input"].min() and item["input"].max() <= 1


def test_small_images_are_reflect_padded(tmp_path):
    source = ImageSource.from_paths(write_images(tmp_path, ["tiny.png"], size=(10, 20)))
    item = PatchDataset(source, "dehaze", 64)[0]
    assert item["input"].shape == item["target"].shape == (3, 64, 64)
    row = torch.arange(5, dtype=torch.float32)[None, None, :].expand(1, 2, 5)
    assert pad_to_at_least(row, 9)[0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0]
    assert pad_to_at_least(torch.ones(3, 1, 1), 4).shape == (3, 4, 4)


def test_test_images_are_whole_and_fixed(tmp_path):
    source = ImageSource.from_paths(write_images(tmp_path, ["a.png", "b.png"], size=(30, 50)))
    for task in ("denoise_50", "derain", "dehaze", "web"):
        dataset = ImageDataset(source, task)
        first, again = dataset[1], ImageDataset(source, task)[1]
        assert first["input"].shape == (3, 30, 50)
        assert torch.equal(first["input"], again["input"]) and first["name"] == "b"
        assert not torch.equal(first["input"], first["target"])
    with pytest.raises(IndexError):
        ImageDataset(source, "web")[2]


def test_pair_size_mismatch_is_an_error(tmp_path):
    write_images(tmp_path / "input", ["a.png"], size=(30, 40))
    write_images(tmp_path / "target", ["a.png"], size=(30, 41))
    pairs = pair_images(tmp_path / "input", tmp_path / "target")
    with pytest.raises(DataError, match=r"pair sizes differ: .*a\.png is 40x30 but .*a\.png is 41x30"):
        ImageSource.from_pairs(pairs)
    streamed = ImageSource.from_pairs(pairs, cache=False)
    with pytest.raises(DataError, match="pair sizes differ"):
        PatchDataset(streamed, "derain", 16)[0]


def test_corrupt_and_empty_images_error_or_are_skipped(tmp_path, caplog):
    write_images(tmp_path, ["good.png"], size=(20, 20))
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    paths = list_images(tmp_path)
    with pytest.raises(DataError, match=r"broken\.jpg"):
        ImageSource.from_paths(paths)
    with caplog.at_level(logging.WARNING, logger="lotteryir.data"):
        source = ImageSource.from_paths(paths, skip_bad=True)
    assert len(source) == 1 and len(source.skipped) == 2
    assert "zero.png" in caplog.text and "skipped 2 of 3" in caplog.text
    streamed = ImageSource.from_paths(paths, cache=False, skip_bad=True)
    assert PatchDataset(streamed, "derain", 8)[0]["target"].shape == (3, 8, 8)
    with pytest.raises(DataError, match="zero.png"):
        PatchDataset(ImageSource.from_paths(paths, cache=False), "derain", 8)[2]


def test_grayscale_rgba_palette_and_16_bit_files_load_as_rgb(tmp_path):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((9, 9), 7, np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.full((9, 9, 4), 200, np.uint8), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((9, 9, 3), 90, np.uint8)).convert("P").save(tmp_path / "pal.png")
    Image.fromarray(np.full((9, 9), 40000, np.uint16)).save(tmp_path / "deep.png")
    source = ImageSource.from_paths(list_images(tmp_path))
    dataset = ImageDataset(source, "web")
    assert [dataset[i]["target"].shape for i in range(4)] == [(3, 9, 9)] * 4


def test_an_empty_source_is_an_error():
    with pytest.raises(DataError):
        ImageSource.from_pairs([])
    with pytest.raises(DataError, match="patch size"):
        PatchDataset(ImageSource.from_tensors([("x", torch.zeros(3, 4, 4))]), "web", 0)
    with pytest.raises(DataError, match="unknown task"):
        PatchDataset(ImageSource.from_tensors([("x", torch.zeros(3, 4, 4))]), "deblur", 8)


def test_pair_dataclass_name():
    from pathlib import Path

    assert Pair(Path("in/x_rainy.png"), Path("gt/x_gt.png")).name == "x_rainy"


def test_pair_size_mismatch_can_be_centre_cropped(tmp_path):
    write_images(tmp_path / "input", ["a.png"], size=(30, 40))
    write_images(tmp_path / "target", ["a.png"], size=(34, 40))
    source = ImageSource.from_pairs(pair_images(tmp_path / "input", tmp_path / "target"), size_mismatch="crop")
    degraded, target = source.load(0)
    assert degraded.shape == target.shape == (3, 30, 40)
    assert torch.equal(target, ImageSource.from_paths([tmp_path / "target" / "a.png"]).load(0)[1][:, 2:32])


def test_workers_deliver_the_same_batches(tmp_path):
    from torch.utils.data import DataLoader

    from lotteryir.data.mixing import MixedDataset

    source = ImageSource.from_paths(write_images(tmp_path, ["a.png", "b.png", "c.png"], size=(30, 30)))
    mixed = MixedDataset({t: PatchDataset(source, t, 16) for t in ("denoise_15", "derain", "web")}, seed=4)
    mixed.set_epoch(2)

    def batches(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(
            mixed, batch_size=4, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(0)
        )
        return [b["input"] for b in loader]

    assert all(torch.equal(a, b) for a, b in zip(batches(0), batches(2), strict=True))


def test_several_degradations_per_test_image_are_independent_draws_with_their_own_names():
    from lotteryir.data import get_recipe

    one = get_recipe("sample", max_images=2).test_sets(tasks=["derain"])["derain/sample"]
    three = get_recipe("sample", max_images=2, degradations=3).test_sets(tasks=["derain"])["derain/sample"]
    assert len(one) == 2 and len(three) == 6
    for i in range(2):  # the first draw is the usual test image
        assert torch.equal(three[i]["input"], one[i]["input"]) and three[i]["name"] == one[i]["name"]
    names = [three[i]["name"] for i in range(6)]
    assert len(set(names)) == 6 and names[2] == f"{names[0]}-d1" and names[5] == f"{names[1]}-d2"
    assert not torch.equal(three[2]["input"], three[0]["input"])
    assert torch.equal(three[2]["target"], three[0]["target"])
