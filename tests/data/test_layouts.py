"""Folder listing and input/target pairing for each layout."""

from __future__ import annotations

import logging

import pytest

from lotteryir.data import DataError
from lotteryir.data.layouts import find_pair_folders, list_images, pair_images

from .helpers import write_images


def _pairs(pairs) -> set[tuple[str, str]]:
    return {(p.input.name, p.target.name) for p in pairs}


def test_mirl_layout(tmp_path):
    write_images(tmp_path / "input", ["a_rainy.png", "b_rainy.png"])
    write_images(tmp_path / "target", ["a_gt.png", "b_gt.png"])
    for layout in ("auto", "mirl"):
        assert _pairs(pair_images(tmp_path / "input", tmp_path / "target", layout=layout)) == {
            ("a_rainy.png", "a_gt.png"),
            ("b_rainy.png", "b_gt.png"),
        }


def test_mirl_layout_for_haze(tmp_path):
    write_images(tmp_path / "input", ["0001_0.8_0.2_hazy.jpg"])
    write_images(tmp_path / "target", ["0001_0.8_0.2_gt.png"])
    assert _pairs(pair_images(tmp_path / "input", tmp_path / "target")) == {
        ("0001_0.8_0.2_hazy.jpg", "0001_0.8_0.2_gt.png")
    }


def test_promptir_rain_layout(tmp_path):
    write_images(tmp_path / "rainy", ["rain-1.png", "rain-12.png"])
    write_images(tmp_path / "gt", ["norain-1.png", "norain-12.png"])
    assert find_pair_folders(tmp_path) == (tmp_path / "rainy", tmp_path / "gt")
    assert _pairs(pair_images(tmp_path / "rainy", tmp_path / "gt")) == {
        ("rain-1.png", "norain-1.png"),
        ("rain-12.png", "norain-12.png"),
    }


def test_reside_layout_many_inputs_per_target_in_subfolders(tmp_path):
    write_images(tmp_path / "hazy" / "part1", ["0001_0.8_0.2.jpg", "0001_0.9_0.1.jpg"])
    write_images(tmp_path / "hazy" / "part2", ["0002_1_0.04.jpg"])
    write_images(tmp_path / "clear", ["0001.png", "0002.png"])
    pairs = pair_images(*find_pair_folders(tmp_path))
    assert _pairs(pairs) == {
        ("0001_0.8_0.2.jpg", "0001.png"),
        ("0001_0.9_0.1.jpg", "0001.png"),
        ("0002_1_0.04.jpg", "0002.png"),
    }


def test_same_name_layout_across_extensions(tmp_path):
    write_images(tmp_path / "input", ["x.jpg", "y.png"])
    write_images(tmp_path / "target", ["x.png", "y.png"])
    assert _pairs(pair_images(tmp_path / "input", tmp_path / "target")) == {("x.jpg", "x.png"), ("y.png", "y.png")}


def test_unmatched_names_are_listed_up_to_ten(tmp_path):
    write_images(tmp_path / "input", [f"{i:02d}.png" for i in range(14)] + ["lonely_in.png"], size=(8, 8))
    write_images(tmp_path / "target", [f"{i:02d}.png" for i in range(14)] + ["lonely_gt.png"], size=(8, 8))
    with pytest.raises(DataError) as info:
        pair_images(tmp_path / "input", tmp_path / "target")
    message = str(info.value)
    assert "1 input(s) without target: lonely_in.png" in message
    assert "1 target(s) without input: lonely_gt.png" in message

    write_images(tmp_path / "input2", [f"in{i:02d}.png" for i in range(12)], size=(8, 8))
    write_images(tmp_path / "target2", ["other.png"], size=(8, 8))
    message = str(pytest.raises(DataError, pair_images, tmp_path / "input2", tmp_path / "target2").value)
    assert "in09.png" in message and "in10.png" not in message and "(2 more)" in message


def test_unknown_layout_is_an_error(tmp_path):
    write_images(tmp_path / "input", ["a.png"], size=(8, 8))
    write_images(tmp_path / "target", ["a.png"], size=(8, 8))
    with pytest.raises(DataError, match="unknown pairing layout"):
        pair_images(tmp_path / "input", tmp_path / "target", layout="nope")


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images in"):
        list_images(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(DataError, match="not a folder"):
        list_images(tmp_path / "file.png")


def test_non_images_are_ignored_and_logged(tmp_path, caplog):
    write_images(tmp_path, ["a.png"], size=(8, 8))
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "Thumbs.db").write_bytes(b"\0")
    with caplog.at_level(logging.DEBUG, logger="lotteryir.data"):
        assert [p.name for p in list_images(tmp_path)] == ["a.png"]
    assert "readme.txt" in caplog.text and "Thumbs.db" in caplog.text
