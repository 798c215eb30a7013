"""The named web degradations: each input is what its definition makes, and the recipes record which.

jpeg: the clean image JPEG-encoded once at an integer quality in [10, 40], nothing else.
resize-jpeg: downscaled by 0.5-1, JPEG at [20, 70], scaled back up (bicubic): not any plain JPEG of the image.
"""

from __future__ import annotations

import pytest
import torch

from lotteryir.data import DataError, get_recipe
from lotteryir.data.degrade import jpeg_compress
from lotteryir.data.recipes import normalize_options

QUALITIES = range(1, 101)


def _plain_jpeg_qualities(item: dict) -> list[int]:
    """The qualities at which one JPEG round trip of the clean target gives exactly the input."""
    return [q for q in QUALITIES if torch.equal(jpeg_compress(item["target"], q), item["input"])]


def _dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    return [torch.rot90(y, k, (-2, -1)) for y in (x, x.flip(-1)) for k in range(4)]


def _patch_jpeg_qualities(item: dict) -> list[int]:
    """As above for a training patch, flipped and rotated after its degradation: one of the 8 undoes it."""
    pairs = zip(_dihedral(item["input"]), _dihedral(item["target"]), strict=True)
    return [q for x, y in pairs for q in _plain_jpeg_qualities({"input": x, "target": y})]


@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_is_one_jpeg_round_trip_at_a_quality_from_10_to_40(channels):
    recipe = get_recipe("sample", max_images=3, test_max_side=64, channels=channels)
    assert recipe.web == "jpeg"  # the default
    test_set = recipe.test_sets(["web"])["web/sample"]
    found = [_plain_jpeg_qualities(test_set[i]) for i in range(len(test_set))]
    assert all(qs and 10 <= min(qs) <= 40 for qs in found), found
    patch = recipe.train_dataset(patch_size=32, tasks=["web"])[0]
    assert any(10 <= q <= 40 for q in _patch_jpeg_qualities(patch))  # training patches alike
    assert test_set.protocol == {
        "degradation": "synthetic",
        "seed": 0,
        "degradations": 1,
        "web": "jpeg",
        "quality": (10, 40),
        "scale": None,
    }


def test_resize_jpeg_is_not_a_plain_jpeg_and_is_recorded_by_name():
    recipe = get_recipe("sample", max_images=3, test_max_side=64, web="resize-jpeg")
    test_set = recipe.test_sets(["web"])["web/sample"]
    items = [test_set[i] for i in range(len(test_set))]
    assert all(item["input"].shape == item["target"].shape for item in items)
    assert sum(not _plain_jpeg_qualities(item) for item in items) >= 2  # a drawn scale of ~1 may stay plain
    assert test_set.protocol["web"] == "resize-jpeg" and test_set.protocol["scale"] == (0.5, 1.0)
    # Other tasks' inputs do not depend on the web degradation.
    default = get_recipe("sample", max_images=3, test_max_side=64)
    rain = [r.test_sets(["derain"])["derain/sample"][0]["input"] for r in (default, recipe)]
    assert torch.equal(*rain)


def test_an_unknown_web_degradation_names_the_choices():
    with pytest.raises(DataError, match="jpeg or resize-jpeg"):
        get_recipe("sample", web="webp")
    with pytest.raises(DataError, match="jpeg or resize-jpeg"):
        normalize_options("web", None, {"web": "social"})
    assert normalize_options("sample", None, {"web": " Resize-JPEG "}) == {"web": "resize-jpeg"}


def test_a_run_records_its_web_degradation_and_an_earlier_run_keeps_resize_jpeg():
    from lotteryir.runs import RunConfig
    from lotteryir.runs.config import resolved_from_dict

    new = RunConfig(model="mirl", size="tiny", rounds=1, steps=1).resolved()
    assert new.data_paths["web"] == "jpeg"  # recorded, the default included
    assert RunConfig(model="mirl", size="tiny", rounds=1, steps=1, tasks=["derain"]).resolved().data_paths == {}
    saved = new.to_dict()
    saved["data_paths"] = {k: v for k, v in saved["data_paths"].items() if k != "web"}  # as runs saved before it
    assert resolved_from_dict(saved).data_paths["web"] == "resize-jpeg"  # their resumes train what they trained
