"""2. One writer per run (an OS lock that dies with its process); readers never write into a run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lotteryir.cli import main
from lotteryir.runs import PruningRun, RunConfig, RunLock, RunLockedError

from ..tiny_run import TINY, TINY_ARGS
from .errors import listing, one_error_line
from .runs import RELIABLE

REPO = Path(__file__).resolve().parents[2]


def _start(out: Path) -> subprocess.Popen:
    """The reliability run in its own process, returned once it has written its configuration."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.runs", str(out)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while not (out / "config.json").is_file():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the run did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    return proc


def test_a_second_writer_is_refused_and_the_lock_dies_with_the_first(tmp_path, capsys):
    out = tmp_path / "run"
    proc = _start(out)
    proc.send_signal(signal.SIGSTOP)  # frozen mid-run, holding its lock, however slow this machine is
    try:
        # The reported case: a second prune on the same --out after the first one's first checkpoint.
        with pytest.raises(RunLockedError, match=f"PID {proc.pid}"):
            PruningRun(out, RunConfig(**RELIABLE))
        line = one_error_line(capsys, ["prune", *TINY_ARGS, "--out", str(out)], f"PID {proc.pid}", str(out))
        assert "another lotteryir prune" in line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # SIGKILL leaves no stale lock: the next writer gets it at once.
    lock = RunLock(out)
    lock.acquire()
    lock.release()


def test_lock_is_released_when_a_run_ends_or_is_refused(finished_run, tmp_path):
    lock = RunLock(finished_run)
    lock.acquire()  # the fixture's run has returned, so its lock is free
    lock.release()
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError):
        PruningRun(fresh, RunConfig(**{**TINY, "model": "nope"})).plan(estimate=False)
    # A refused run on a new directory leaves no directory (and so no lock) behind.
    assert not fresh.exists()


@pytest.fixture
def busy_run(finished_run, tmp_path):
    """A copy of a run as a writer in the middle of its work leaves it: locked, a half-written file."""
    run = tmp_path / "busy"
    shutil.copytree(finished_run, run)
    (run / ".history.jsonl.abc123.tmp").write_text('{"round": 3, "dens')
    lock = RunLock(run)
    lock.acquire()
    yield run
    lock.release()


def _read_only(root: Path, on: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        os.chmod(p, mode & ~0o222 if on else mode | 0o200)


def test_readers_work_on_a_running_read_only_run_without_writing(busy_run, tmp_path, capsys):
    before = listing(busy_run)
    _read_only(busy_run, True)  # root ignores permissions; the listing below is the real check
    try:
        assert main(["report", str(busy_run)]) == 0
        assert "mean PSNR" in capsys.readouterr().out
        assert main(["report", str(busy_run), "--json"]) == 0
        assert [r["round"] for r in json.loads(capsys.readouterr().out)["rounds"]] == [0, 1, 2]
        assert main(["report", str(busy_run), "--figure", str(tmp_path / "fig.png")]) == 0
        assert (tmp_path / "fig.png").stat().st_size > 10_000 and "fig.png" in capsys.readouterr().out
        assert main(["evaluate", str(busy_run), "--round", "1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["sets"]
        assert main(["export", str(busy_run), "--round", "2", "-o", str(tmp_path / "t.safetensors")]) == 0
    finally:
        _read_only(busy_run, False)
    assert listing(busy_run) == before


def test_a_refused_folder_is_left_exactly_as_it_was(tmp_path, capsys):
    # --out pointing at someone's folder: refused, and nothing of it touched (not even its .tmp files).
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("x")
    (folder / "sub" / ".draft.tmp").write_text("y")
    before = listing(folder)
    one_error_line(capsys, ["prune", *TINY_ARGS, "--out", str(folder)], "not empty but holds no run")
    assert listing(folder) == before and not (folder / "lock").exists()
