"""3. What kills and damage leave in a run directory: leftovers, permissions, damaged records."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from lotteryir.runs import PruningRun, RunCallbacks, RunConfig, read_history

from ..tiny_run import TINY, TINY_ARGS
from .errors import listing, one_error_line


@pytest.fixture
def run_copy(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_leftover_temporary_files_are_removed_on_the_next_start(run_copy):
    leftovers = [
        run_copy / ".history.jsonl.k2j4.tmp",
        run_copy / "rounds" / "r01" / ".mask.safetensors.x9.tmp",
        run_copy / ".pruner.q1w2.tmp",
    ]
    leftovers[0].write_text('{"round": 0, "dens')
    leftovers[1].write_bytes(b"\0" * 100)
    leftovers[2].mkdir()
    (leftovers[2] / "pruner.json").write_text("{")
    run = PruningRun(run_copy, RunConfig(**TINY))
    try:
        assert sorted(run.leftovers) == sorted(leftovers)
        assert not any(p.exists() for p in leftovers)
    finally:
        run.close()


def test_state_folders_get_ordinary_permissions(finished_run):
    # mkdtemp makes 0700 folders; the swapped-in pruner/ must look like any other folder.
    assert finished_run.joinpath("pruner").stat().st_mode & 0o777 == 0o777 & ~_umask()


def test_damaged_history_is_named_to_readers_and_rebuilt_by_the_writer(run_copy, capsys):
    history = read_history(run_copy)
    text = (run_copy / "history.jsonl").read_text()
    (run_copy / "history.jsonl").write_text(text[: len(text) - 40])  # cut inside the last line
    one_error_line(capsys, ["report", str(run_copy)], "history.jsonl", "line 3")
    trained = []
    PruningRun(run_copy, RunConfig(**TINY), RunCallbacks(on_train_start=lambda *a: trained.append(a))).run()
    assert read_history(run_copy) == history and not trained


@pytest.mark.parametrize("name", ["pruner.json", "model.safetensors", "mask.safetensors"])
def test_damaged_pruner_state_is_named_before_any_training(run_copy, capsys, name):
    damaged = run_copy / "pruner" / name
    damaged.write_bytes(damaged.read_bytes()[:50])
    (run_copy / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in read_history(run_copy)[:1]))
    before = {k: v for k, v in listing(run_copy).items() if k != "lock"}
    one_error_line(capsys, ["prune", *TINY_ARGS, "--out", str(run_copy)], str(damaged), "new --out")
    assert {k: v for k, v in listing(run_copy).items() if k != "lock"} == before
