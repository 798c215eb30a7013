"""All-in-one mixing: balance by repeat factors or weights, task tags, epochs."""

from __future__ import annotations

import pytest
import torch

from lotteryir.data import DataError
from lotteryir.data.datasets import PatchDataset
from lotteryir.data.mixing import MIRL_REPEATS, MixedDataset
from lotteryir.data.source import ImageSource


def _part(task: str, n: int) -> PatchDataset:
    images = [(f"{task}-{i}", torch.full((3, 20, 20), i / max(n, 1), dtype=torch.float32)) for i in range(n)]
    return PatchDataset(ImageSource.from_tensors(images), task, 8)


def test_repeat_factors_set_the_balance():
    parts = {"denoise_15": _part("denoise_15", 4), "derain": _part("derain", 2), "dehaze": _part("dehaze", 10)}
    mixed = MixedDataset(parts, repeats={"denoise_15": 3, "derain": 6})
    assert len(mixed) == 4 * 3 + 2 * 6 + 10
    assert mixed.task_counts() == {"denoise_15": 12, "derain": 12, "dehaze": 10}
    for index in range(len(mixed)):
        item = mixed[index]
        assert item["task"] == mixed.task_of(index) and item["name"].startswith(item["task"])
    names = [mixed[i]["name"] for i in range(12, 24)]
    assert sorted(set(names)) == ["derain-0", "derain-1"] and names.count("derain-0") == 6


def test_mirl_default_repeats():
    assert MIRL_REPEATS == {"denoise_15": 3, "denoise_25": 3, "denoise_50": 3, "derain": 120, "dehaze": 1}


def test_weights_set_the_sampling_rates():
    parts = {"web": _part("web", 3), "dehaze": _part("dehaze", 50)}
    mixed = MixedDataset(parts, weights={"web": 3.0, "dehaze": 1.0}, length=2000, seed=5)
    counts = mixed.task_counts()
    assert len(mixed) == 2000
    assert abs(counts["web"] / 2000 - 0.75) < 0.04
    mixed.set_epoch(1)
    assert [mixed.task_of(i) for i in range(50)] != [
        MixedDataset(parts, weights={"web": 3.0, "dehaze": 1.0}, length=2000, seed=5).task_of(i) for i in range(50)
    ]


def test_mixed_items_are_deterministic_and_epochs_differ():
    def build():
        return MixedDataset({"denoise_25": _part("denoise_25", 3), "derain": _part("derain", 3)}, seed=11)

    a, b = build(), build()
    assert all(torch.equal(a[i]["input"], b[i]["input"]) for i in reversed(range(len(a))))
    a.set_epoch(3)
    assert not torch.equal(a[0]["input"], b[0]["input"])
    b.set_epoch(3)
    assert torch.equal(a[4]["input"], b[4]["input"])


def test_bad_mixing_options():
    parts = {"web": _part("web", 2)}
    with pytest.raises(DataError, match="not both"):
        MixedDataset(parts, repeats={"web": 1}, weights={"web": 1.0})
    with pytest.raises(DataError, match="derain"):
        MixedDataset(parts, repeats={"derain": 2})
    with pytest.raises(DataError, match="empty"):
        MixedDataset(parts, repeats={"web": 0})
    with pytest.raises(DataError, match="not all zero"):
        MixedDataset(parts, weights={"web": 0.0})
    with pytest.raises(IndexError):
        MixedDataset(parts)[2]


def test_collates_in_a_dataloader():
    mixed = MixedDataset({"denoise_50": _part("denoise_50", 4), "web": _part("web", 4)})
    batch = next(iter(torch.utils.data.DataLoader(mixed, batch_size=8)))
    assert batch["input"].shape == (8, 3, 8, 8) and len(batch["task"]) == 8


def test_identity_pairs_join_the_mix_with_their_repeat_and_are_clean():
    from lotteryir.data import get_recipe

    recipe = get_recipe("sample", max_images=2, identity=3)
    data = recipe.train_dataset(patch_size=16, seed=1, tasks=["web", "derain"])
    counts = data.task_counts()
    assert counts == {"web": 2 * 8, "derain": 2 * 8, "identity": 2 * 3}
    items = [data[i] for i in range(len(data))]
    assert all(torch.equal(i["input"], i["target"]) for i in items if i["task"] == "identity")
    degraded = [torch.equal(i["input"], i["target"]) for i in items if i["task"] != "identity"]
    assert sum(degraded) <= len(degraded) // 4  # a small rain patch may catch no streak
    assert "identity" not in get_recipe("sample", max_images=2, identity=0).train_dataset(patch_size=16).task_counts()
    assert "identity" not in recipe.test_sets()  # training only
