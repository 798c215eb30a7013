"""1. No silent overwrite: restore and export never replace an input, a run's file, or (unasked) any file."""

from __future__ import annotations

import shutil

import pytest
import torch

from lotteryir.cli import main
from lotteryir.data import read_image, write_image

from .errors import listing, one_error_line


@pytest.fixture
def photos(tmp_path):
    """A folder with cat.png and cat.jpg (same stem) and dog.png."""
    folder = tmp_path / "photos"
    torch.manual_seed(0)
    for name in ("cat.png", "cat.jpg", "dog.png"):
        write_image(torch.rand(3, 24, 32), folder / name)
    return folder


def test_restore_refuses_two_inputs_with_one_output_name(finished_run, photos, capsys):
    before = listing(photos)
    # The reported case: the original is overwritten, then overwritten again by cat.jpg's restoration.
    line = one_error_line(
        capsys,
        ["restore", str(finished_run), str(photos / "cat.png"), str(photos / "cat.jpg"), "-o", str(photos)],
        "cat.png",
        "cat.jpg",
    )
    assert "both" in line
    one_error_line(
        capsys,
        [
            "restore",
            str(finished_run),
            str(photos / "cat.png"),
            str(photos / "cat.jpg"),
            "-o",
            str(photos.parent / "out"),
            "--overwrite",
        ],
        "cat.png",
        "cat.jpg",
    )
    assert listing(photos) == before
    assert not (photos.parent / "out").exists()


def test_restore_never_replaces_an_input(finished_run, photos, capsys):
    before = listing(photos)
    for extra in ([], ["--overwrite"]):
        line = one_error_line(
            capsys,
            ["restore", str(finished_run), str(photos / "dog.png"), "-o", str(photos), *extra],
            "would replace the input",
            "dog.png",
        )
        assert "-o" in line
    assert listing(photos) == before


def test_restore_refuses_existing_outputs_unless_overwrite(finished_run, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["restore", str(finished_run), str(photos / "dog.png"), "-o", str(out)]) == 0
    first = listing(out)
    (out / "dog.png").write_bytes(b"an earlier result")
    capsys.readouterr()
    one_error_line(
        capsys,
        ["restore", str(finished_run), str(photos / "dog.png"), "-o", str(out)],
        "exist already",
        "dog.png",
        "--overwrite",
    )
    assert (out / "dog.png").read_bytes() == b"an earlier result"
    assert main(["restore", str(finished_run), str(photos / "dog.png"), "-o", str(out), "--overwrite"]) == 0
    assert read_image(out / "dog.png").shape == (3, 24, 32) and listing(out).keys() == first.keys()


def test_restore_continues_past_bad_images_and_counts_them(finished_run, photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (photos / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    args = [str(photos / n) for n in ("broken.png", "dog.png", "empty.jpg", "cat.png")]
    code = main(["restore", str(finished_run), *args, "-o", str(out)])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 1
    assert any("broken.png" in e for e in errors) and any("empty.jpg" in e for e in errors)
    assert "2 of 4 images failed" in errors[-1] and len(errors) == 3
    assert sorted(p.name for p in out.iterdir()) == ["cat.png", "dog.png"]  # the good ones, after a bad one


def test_export_refuses_existing_files_unless_overwrite(finished_run, tmp_path, capsys):
    target = tmp_path / "ticket.safetensors"
    target.write_bytes(b"someone's file")
    one_error_line(capsys, ["export", str(finished_run), "--round", "1", "-o", str(target)], "exists", "--overwrite")
    assert target.read_bytes() == b"someone's file"
    assert main(["export", str(finished_run), "--round", "1", "-o", str(target), "--overwrite"]) == 0
    assert target.stat().st_size > 10_000


@pytest.mark.parametrize(
    "inside", ["rounds/r02/ticket.safetensors", "config.json", "new.safetensors", "rounds/r01/extra.safetensors"]
)
def test_export_never_writes_inside_a_run(finished_run, tmp_path, capsys, inside):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = listing(run)
    for extra in ([], ["--overwrite"]):
        one_error_line(
            capsys,
            ["export", str(run), "--round", "2", "--dtype", "fp16", "-o", str(run / inside), *extra],
            "inside the run directory",
        )
    assert listing(run) == before


def test_other_outputs_are_guarded_too(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = listing(run)
    one_error_line(capsys, ["report", str(run), "--figure", str(run / "fig.png")], "inside the run directory")
    one_error_line(capsys, ["evaluate", str(run), "--save-images", str(run / "restored")], "inside the run directory")
    one_error_line(
        capsys, ["restore", str(run), str(tmp_path / "x.png"), "-o", str(run / "rounds")], "inside the run directory"
    )
    taken = tmp_path / "figure.png"
    taken.write_bytes(b"keep me")
    one_error_line(capsys, ["report", str(run), "--figure", str(taken)], "exists", "--overwrite")
    full = tmp_path / "restored"
    (full / "old.png").parent.mkdir()
    (full / "old.png").write_bytes(b"keep me")
    one_error_line(capsys, ["evaluate", str(run), "--save-images", str(full)], "not empty", "--overwrite")
    assert listing(run) == before and taken.read_bytes() == b"keep me" and (full / "old.png").read_bytes() == b"keep me"


def test_a_folder_with_someone_elses_config_json_is_not_a_run(finished_run, photos, tmp_path):
    # Many programs keep a config.json (a home folder may hold one): that alone is not a run.
    (tmp_path / "config.json").write_text('{"theme": "dark"}')
    assert main(["restore", str(finished_run), str(photos / "dog.png"), "-o", str(tmp_path / "out")]) == 0
    assert main(["export", str(finished_run), "-o", str(tmp_path / "t.safetensors")]) == 0
