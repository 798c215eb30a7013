"""Issue 22.4: no-overwrite writes are atomic against a concurrent writer; I/O errors name the file."""

from __future__ import annotations

import errno
import os
import threading

import pytest
import torch

import lotteryir._files as files
from lotteryir.cli import main
from lotteryir.pruning import Mask
from lotteryir.pruning.ticket import load_compact, save_compact
from lotteryir.runs import export_run, round_ticket_path

from .errors import one_error_line


def _race_at_the_rename(monkeypatch, writers: int = 2) -> None:
    """Hold every writer just before its final rename until all of them are there: the worst instant."""
    barrier = threading.Barrier(writers, timeout=60)
    for name in ("link", "replace"):
        real = getattr(os, name)

        def held(src, dst, *args, _real=real, **kwargs):
            if str(src).endswith(files.TMP_SUFFIX):
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    pass
            return _real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, held)


def _two_at_once(*jobs):
    results: list[object] = [None] * len(jobs)

    def run(i):
        try:
            results[i] = jobs[i]()
        except BaseException as e:  # noqa: BLE001 - the result of a racer, checked below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_two_exports_to_one_path_at_the_same_instant(finished_run, tmp_path, monkeypatch):
    rounds = {r: load_compact(round_ticket_path(finished_run, r))[1] for r in (1, 2)}
    assert rounds[1] != rounds[2]
    _race_at_the_rename(monkeypatch)
    for attempt in range(4):
        target = tmp_path / f"ticket{attempt}.safetensors"
        results = _two_at_once(*(lambda r=r, t=target: export_run(finished_run, t, round=r) for r in (1, 2)))
        won = [r for r, res in zip((1, 2), results) if isinstance(res, dict)]
        lost = [res for res in results if isinstance(res, BaseException)]
        assert len(won) == 1 and len(lost) == 1, results  # exactly one succeeds
        assert isinstance(lost[0], FileExistsError) and str(target) in str(lost[0]) and "--overwrite" in str(lost[0])
        assert load_compact(target)[1] == rounds[won[0]]  # the winner's file, intact
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{target.name}")) == []


def test_two_export_commands_racing_one_succeeds_one_exits_1(finished_run, tmp_path, monkeypatch, capsys):
    _race_at_the_rename(monkeypatch)
    target = tmp_path / "ticket.safetensors"
    codes = _two_at_once(
        *(lambda r=r: main(["export", str(finished_run), "--round", str(r), "-o", str(target)]) for r in (1, 2))
    )
    assert sorted(codes) == [0, 1], codes
    captured = capsys.readouterr()
    assert captured.out.count("wrote") == 1
    assert f"error: {target} exists" in captured.err
    load_compact(target)  # complete and checked


def test_overwrite_still_replaces(tmp_path):
    path = tmp_path / "a.txt"
    files.atomic_write_text(path, "one", overwrite=False)
    with pytest.raises(FileExistsError, match="a.txt exists"):
        files.atomic_write_text(path, "two", overwrite=False)
    assert path.read_text() == "one"
    files.atomic_write_text(path, "three")
    assert path.read_text() == "three" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_without_hard_links_the_name_is_still_claimed_exclusively(tmp_path, monkeypatch):
    def no_links(src, dst, *a, **k):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "a.txt"
    files.atomic_write_text(path, "one", overwrite=False)
    with pytest.raises(FileExistsError, match="a.txt exists"):
        files.atomic_write_text(path, "two", overwrite=False)
    assert path.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def _small(tmp_path):
    state = {"w": torch.arange(64.0).reshape(8, 8), "b": torch.ones(8)}
    return state, Mask({"w": state["w"] > 30})


@pytest.mark.parametrize(
    ("call", "code", "overwrite"),
    [
        ("fsync", errno.ENOSPC, True),
        ("replace", errno.EROFS, True),
        ("link", errno.EACCES, False),
        ("chmod", errno.EACCES, False),
    ],
)
def test_io_errors_name_the_file(tmp_path, monkeypatch, call, code, overwrite):
    state, mask = _small(tmp_path)
    path = tmp_path / "out" / "t.safetensors"

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, call, fail)
    with pytest.raises(OSError) as info:
        save_compact(state, mask, path, overwrite=overwrite)
    assert info.value.errno == code
    assert str(info.value) == f"cannot write {path}: {os.strerror(code)}"
    monkeypatch.undo()
    assert list(path.parent.iterdir()) == []  # no temporary file left behind


def test_a_full_disk_during_export_is_one_line_naming_the_file(finished_run, tmp_path, monkeypatch, capsys):
    target = tmp_path / "ticket.safetensors"

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    one_error_line(capsys, ["export", str(finished_run), "-o", str(target)], f"cannot write {target}", "No space left")
    assert not target.exists()


def test_web_and_figure_never_replace_a_file_written_meanwhile(finished_run, tmp_path):
    from lotteryir.deploy import build_site
    from lotteryir.runs import read_history
    from lotteryir.runs.figures import write_report_figure

    site = tmp_path / "site"
    site.mkdir()
    (site / "model.onnx").write_text("another writer's")  # appeared after the command checked the folder
    with pytest.raises(FileExistsError, match="model.onnx exists"):
        build_site(torch.nn.Conv2d(3, 3, 3, padding=1), site, name="n", density=1.0, overwrite=False)
    assert (site / "model.onnx").read_text() == "another writer's"
    figure = tmp_path / "figure.png"
    figure.write_text("another writer's")
    with pytest.raises(FileExistsError, match="figure.png exists"):
        write_report_figure(read_history(finished_run), figure, overwrite=False)
    assert figure.read_text() == "another writer's"
    write_report_figure(read_history(finished_run), figure, overwrite=True)
    assert figure.read_bytes().startswith(b"\x89PNG")
