"""Named recipes: the offline sample set, MIR-L's tree, single-task recipes, and root problems."""

from __future__ import annotations

import shutil

import pytest
import torch

from lotteryir.data import ALL_TASKS, DataError, available_recipes, get_recipe

from .helpers import write_images


@pytest.fixture(scope="module")
def sample():
    return get_recipe("sample", max_images=2)


def test_sample_recipe_loads_offline(sample):
    assert sample.tasks == list(ALL_TASKS) and sample.check() == []
    train = sample.train_dataset(patch_size=32, seed=0)
    assert train.task_counts() == {**{t: 2 * 8 for t in ALL_TASKS}, "identity": 2 * 16}  # identity pairs in the mix
    item = train[0]
    assert item["input"].shape == (3, 32, 32) and item["task"] in ALL_TASKS
    sets = sample.test_sets()
    assert sorted(sets) == sorted(f"{t}/sample" for t in ALL_TASKS)
    first = sets["derain/sample"][0]
    assert max(first["input"].shape[-2:]) <= 256 and first["name"] == "chelsea"
    assert torch.equal(
        first["input"], get_recipe("sample", max_images=2).test_sets(["derain"])["derain/sample"][0]["input"]
    )


def test_full_sample_split_is_disjoint():
    recipe = get_recipe("sample")
    assert len(recipe.train_names) >= 10 and len(recipe.test_names) >= 4
    assert not set(recipe.train_names) & set(recipe.test_names)
    assert "sample" in recipe.describe() or "skimage" in recipe.describe()


def test_sample_task_selection_and_bad_options(sample):
    assert list(sample.test_sets(["denoise_25"])) == ["denoise_25/sample"]
    # Identity pairs (clean in, clean out) stay in a selected mix: they keep the chosen tasks from
    # bleeding into images that need none of them.
    assert set(sample.train_dataset(16, tasks=["web", "dehaze"]).task_counts()) == {"web", "dehaze", "identity"}
    assert set(sample.train_dataset(16, tasks=["web", "dehaze"], identity=0).task_counts()) == {"web", "dehaze"}
    # A single task trains without them (they would be two thirds of its mix and pin it at the identity),
    # unless the recipe was given a count: then that count, for any selection.
    assert set(sample.train_dataset(16, tasks=["derain"]).task_counts()) == {"derain"}
    forced = get_recipe("sample", max_images=2, identity=3).train_dataset(16, tasks=["derain"]).task_counts()
    assert forced == {"derain": 2 * 8, "identity": 2 * 3}
    with pytest.raises(DataError, match="deblur"):
        sample.train_dataset(16, tasks=["deblur"])
    with pytest.raises(DataError, match="no data root"):
        get_recipe("sample", root="/data")
    with pytest.raises(DataError, match="unknown option"):
        get_recipe("sample", colour=True)


def test_sample_test_max_side_shrinks_only_the_test_images():
    from lotteryir.data.recipes import normalize_options

    small = get_recipe("sample", max_images=1, test_max_side=48)
    image = small.test_sets(["derain"])["derain/sample"][0]
    assert max(image["input"].shape[-2:]) == 48 and image["input"].shape == image["target"].shape
    assert "long side <= 48 px" in small.describe()
    assert small.train_dataset(32, tasks=["derain"])[0]["input"].shape == (3, 32, 32)  # training untouched
    assert normalize_options("sample", None, {"test_max_side": "64"}) == {"test_max_side": 64}
    with pytest.raises(DataError, match="test_max_side must be a whole number >= 16"):
        normalize_options("sample", None, {"test_max_side": "8"})
    with pytest.raises(DataError, match="test_max_side must be at least 16"):
        get_recipe("sample", test_max_side=8)


def _mirl_tree(root):
    write_images(root / "train/denoise/WED", ["00007.bmp", "00010.bmp"])
    write_images(root / "train/denoise/BSD400", ["100080.jpg"])
    write_images(root / "train/derain/Rain100L/input", ["rain-101_rainy.png"])
    write_images(root / "train/derain/Rain100L/target", ["rain-101_gt.png"])
    write_images(root / "train/dehaze/OTS/input", ["0025_0.9_0.2_hazy.jpg", "0039_0.95_0.2_hazy.jpg"])
    write_images(root / "train/dehaze/OTS/target", ["0025_0.9_0.2_gt.jpg", "0039_0.95_0.2_gt.jpg"])
    write_images(root / "test/denoise/BSD68", ["101085.png"])
    write_images(root / "test/denoise/Urban100", ["img_001.png", "img_002.png"])
    write_images(root / "test/derain/Rain100L/input", ["rain-001_rainy.png"])
    write_images(root / "test/derain/Rain100L/target", ["rain-001_gt.png"])
    write_images(root / "test/dehaze/SOTS/input", ["0001_0.8_0.2_hazy.jpg"])
    write_images(root / "test/dehaze/SOTS/target", ["0001_0.8_0.2_gt.png"])
    return root


def test_mirl_recipe_on_its_tree(tmp_path):
    recipe = get_recipe("mirl", _mirl_tree(tmp_path))
    assert recipe.check() == []
    assert recipe.tasks == ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"]
    train = recipe.train_dataset(patch_size=16, seed=3)
    assert train.task_counts() == {"denoise_15": 9, "denoise_25": 9, "denoise_50": 9, "derain": 120, "dehaze": 2}
    assert train[len(train) - 1]["task"] == "dehaze"
    sets = recipe.test_sets()
    assert sorted(sets) == sorted(
        [
            "denoise_15/BSD68",
            "denoise_15/Urban100",
            "denoise_25/BSD68",
            "denoise_25/Urban100",
            "denoise_50/BSD68",
            "denoise_50/Urban100",
            "derain/Rain100L",
            "dehaze/SOTS",
        ]
    )
    assert len(sets["denoise_50/Urban100"]) == 2 and sets["dehaze/SOTS"][0]["input"].shape == (3, 40, 48)
    balanced = recipe.train_dataset(16, weights={"derain": 1, "dehaze": 1}, tasks=["derain", "dehaze"], length=10)
    assert len(balanced) == 10


def test_mirl_check_names_whats_missing(tmp_path):
    root = _mirl_tree(tmp_path)
    shutil.rmtree(root / "test/denoise/Urban100")
    (root / "test/derain/Rain100L/target/rain-001_gt.png").rename(root / "test/derain/Rain100L/target/rain-002_gt.png")
    recipe = get_recipe("mirl", root)
    problems = recipe.check()
    assert len(problems) == 2
    assert "Urban100" in problems[0] and "not found" in problems[0]
    assert "rain-001_rainy.png" in problems[1] and "rain-002_gt.png" in problems[1]
    with pytest.raises(DataError, match="Urban100"):
        recipe.test_sets(["denoise_15"])
    recipe = get_recipe("mirl", root, denoise_test={"BSD68": "test/denoise/BSD68"}, derain_test=None)
    assert sorted(recipe.test_sets(["denoise_15"])) == ["denoise_15/BSD68"]


def test_wrong_or_missing_root(tmp_path):
    with pytest.raises(DataError, match="not found"):
        get_recipe("mirl", tmp_path / "nope")
    problems = get_recipe("mirl", tmp_path).check()  # an empty root: every folder is named
    assert any("train/denoise/WED" in p for p in problems) and any("test/dehaze/SOTS" in p for p in problems)
    # Without a root the default folders cannot be found: check() names each with the remedy.
    assert get_recipe("mirl").check() == [
        "the mirl recipe's folders lie under a data root: give --data ROOT (layout: `lotteryir recipes`), "
        "or name each with --data-path KEY=FOLDER"
    ]
    some = get_recipe("mirl", denoise_test=str(tmp_path)).check(["denoise_25"])
    assert any(p.startswith("denoise_train: its default (train/denoise/WED") and "--data ROOT" in p for p in some)
    assert get_recipe("mirl", denoise_test=str(tmp_path)).check(["denoise_25"], train=False)[0].startswith("no images")
    with pytest.raises(DataError, match="needs a data root"):
        get_recipe("mirl", denoise_test="relative/BSD68")  # a folder given relative, with nothing to lie under
    with pytest.raises(DataError, match="unknown data recipe"):
        get_recipe("imagenet")
    with pytest.raises(DataError, match="unknown option"):
        get_recipe("mirl", tmp_path, rain_dir="x")


def test_derain_recipe_with_promptir_layout(tmp_path):
    write_images(tmp_path / "Train/Derain/rainy", ["rain-1.png", "rain-2.png"])
    write_images(tmp_path / "Train/Derain/gt", ["norain-1.png", "norain-2.png"])
    write_images(tmp_path / "test/derain/Rain100L/input", ["rain-001.png"])
    write_images(tmp_path / "test/derain/Rain100L/target", ["norain-001.png"])
    recipe = get_recipe("derain", tmp_path, derain_train="Train/Derain")
    assert recipe.tasks == ["derain"] and recipe.check() == []
    assert len(recipe.train_dataset(16)) == 2 * 120
    assert list(recipe.test_sets()) == ["derain/Rain100L"]


def test_single_task_recipes_synthesize_on_clean_folders(tmp_path):
    write_images(tmp_path / "clean", ["a.png", "b.jpg"])
    write_images(tmp_path / "heldout", ["c.png"])
    for name in ("derain", "dehaze", "web", "denoise"):
        recipe = get_recipe(name, **{f"{name}_train": tmp_path / "clean", f"{name}_test": tmp_path / "heldout"})
        assert recipe.check() == []
        train = recipe.train_dataset(32, seed=1)
        assert any(not torch.equal(train[i]["input"], train[i]["target"]) for i in range(len(train)))
        sets = recipe.test_sets()
        assert all(key.endswith("/heldout") for key in sets) and len(sets) == len(recipe.tasks)


def test_available_recipes_lists_layouts():
    infos = {info.name: info for info in available_recipes()}
    assert set(infos) == {"sample", "mirl", "denoise", "derain", "dehaze", "web"}
    assert "Rain100L" in infos["mirl"].layout and infos["web"].tasks == ("web",)
    assert infos["sample"].tasks == tuple(ALL_TASKS)


def test_sample_validation_split_never_touches_the_test_photographs():
    from lotteryir.data.sample import SAMPLE_TEST, SAMPLE_TRAIN, SAMPLE_VALIDATION

    val = get_recipe("sample", split="validation")
    assert set(val.test_names) == set(SAMPLE_VALIDATION) and set(SAMPLE_VALIDATION) <= set(SAMPLE_TRAIN)
    assert not set(val.train_names) & set(val.test_names)
    assert not (set(val.train_names) | set(val.test_names)) & set(SAMPLE_TEST)
    sets = val.test_sets(tasks=["web"])
    assert list(sets) == ["web/sample-val"] and len(sets["web/sample-val"]) == len(SAMPLE_VALIDATION)
    assert get_recipe("sample").test_names == list(SAMPLE_TEST)
    with pytest.raises(DataError, match="split"):
        get_recipe("sample", split="train")
