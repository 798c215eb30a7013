"""Kill a run at any instant, rerun it: masks, weights and history equal an uninterrupted run's.

After a SIGKILL only the disk survives, and the disk changes only when a file is renamed into
place (every write is a temporary file, then ``os.replace``). The reference run below records the
run directory just before and just after every rename (hard-linked copies, cheap): those are all
the states a kill can leave, up to half-deleted folders. Tests resume from them, and from real
SIGKILLs of a separate process at random times.

Folders are deleted file by file (``shutil.rmtree``), so the recording also keeps the state half
way through every deletion inside the run directory.

``LOTTERYIR_KILL_SWEEP=1`` resumes from every recorded state (a few minutes); by default one state
of every kind (the same one on every run), plus the states the issue reported by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lotteryir.runs import read_history
from lotteryir.runs.lock import LOCK_FILE

from .runs import assert_same_run, run

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class State:
    """The run directory as a kill at one instant leaves it."""

    index: int
    when: str  # "before" or "after" the rename, or "mid-delete" of a folder
    target: str  # the renamed file or deleted folder, relative to the run directory
    path: Path

    def __str__(self) -> str:
        return f"#{self.index} {self.when} {self.target}"

    @property
    def kind(self) -> tuple[str, str]:
        """What a kill here interrupts, whatever the round, step or temporary name.

        Round 0 (dense, with the rewind snapshot) is a phase of its own, later rounds are alike. Files
        written into a folder that is only read whole (a checkpoint folder, a round's outputs, a
        temporary folder) make one kind; for the renames that swap state (pruner, pruner.old,
        history.jsonl, report.png) before and after are kinds of their own.
        """
        target = re.sub(r"rounds/r(?!00)\d+", "rounds/rNN", self.target)
        if self.when == "mid-delete":
            return self.when, target
        if re.match(r"\.[^/]+\.tmp/", target):
            return "write", "a temporary folder"
        if m := re.match(r"rounds/r(00|NN)/ckpt[^/]*(?=/)", target):
            return "write", m.group(0)
        if m := re.match(r"rounds/r(00|NN)(?=/[^/]+$)", target):
            return "write", m.group(0) + " outputs"
        if target == "config.json":
            return "write", target
        return self.when, target


@dataclass
class Recording:
    reference: Path
    states: list[State]
    seconds: float


def _link_or_copy(src: str, dst: str) -> None:
    # Files are replaced, never rewritten in place, so hard links stay frozen; the lock file is
    # the exception (its holder writes its PID into it).
    if Path(src).name == LOCK_FILE:
        shutil.copy2(src, dst)
    else:
        os.link(src, dst)


@pytest.fixture(scope="session")
def recording(tmp_path_factory) -> Recording:
    """An uninterrupted run of the reliability configuration, with every state a kill can leave."""
    base = tmp_path_factory.mktemp("kill")
    reference, snapshots = base / "reference", base / "states"
    states: list[State] = []
    real_replace = os.replace

    def snap(when: str, dst: str) -> None:
        path = snapshots / f"{len(states):03d}"
        shutil.copytree(reference, path, copy_function=_link_or_copy)
        states.append(State(len(states), when, str(Path(dst).relative_to(reference)), path))

    def recording_replace(src, dst, *args, **kwargs):
        inside = Path(dst).resolve().is_relative_to(reference.resolve())
        if inside:
            snap("before", dst)
        real_replace(src, dst, *args, **kwargs)
        if inside:
            snap("after", dst)

    def recording_rmtree(path, *args, **kwargs):
        # Half the files gone, the rest (train_state.json, pruner.json: sorted last) still there.
        folder = Path(path)
        if folder.is_dir() and folder.resolve().is_relative_to(reference.resolve()):
            files = sorted(f for f in folder.rglob("*") if f.is_file())
            if len(files) > 1:
                for f in files[: len(files) // 2]:
                    f.unlink()
                snap("mid-delete", str(folder))
        real_rmtree(path, *args, **kwargs)

    real_rmtree = shutil.rmtree
    os.replace, shutil.rmtree = recording_replace, recording_rmtree
    try:
        start = time.perf_counter()
        run(reference)
        seconds = time.perf_counter() - start
    finally:
        os.replace, shutil.rmtree = real_replace, real_rmtree
    return Recording(reference, states, seconds)


def _resume(recording: Recording, state: State, tmp: Path) -> None:
    where = tmp / f"state{state.index:03d}"
    shutil.copytree(state.path, where, copy_function=_link_or_copy)
    run(where)
    assert_same_run(recording.reference, where)


def _find(recording: Recording, when: str, target: str, nth: int = -1) -> State:
    hits = [s for s in recording.states if s.when == when and s.target == target]
    assert hits, f"no state {when} {target}"
    return hits[nth]


# The instants the issue (and review) named, each a state of its own.
NAMED = {
    # Round 0's last checkpoint is written, its evaluation not finished: resuming trains zero steps,
    # so the tensors that received gradients must come from the checkpoint.
    "round 0 trained, not evaluated": ("after", "rounds/r00/ckpt/train_state.json", -1),
    # The late-rewinding snapshot is being saved during round 0.
    "rewind point being saved": ("before", "pruner", 0),
    # Round 1 committed (pruner/ swapped in), history.jsonl not yet rewritten.
    "committed, history behind": ("after", "pruner", 2),
    # Half way through swapping pruner/: the old state is pruner.old, the new one a temporary folder.
    "mid swap": ("after", "pruner.old", 1),
    # The very first write (config.json) torn: the directory holds only a temporary file and the lock.
    "config.json half written": ("before", "config.json", 0),
    # A control's training checkpoint in round 2.
    "control training": ("after", "rounds/r02/ckpt-random_prune/train_state.json", 0),
    # After history.jsonl, before report.png of the last round.
    "figure behind": ("before", "report.png", -1),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_named_instants_resume_identically(recording, tmp_path, name):
    when, target, nth = NAMED[name]
    _resume(recording, _find(recording, when, target, nth), tmp_path)


def _one_of_each_kind(recording: Recording) -> list[State]:
    # The last of each kind: the same states on every run, and the cheapest to resume (the last round).
    last: dict[tuple[str, str], State] = {}
    for state in recording.states:
        last[state.kind] = state
    return sorted(last.values(), key=lambda s: s.index)


# Kinds of state the run must go through; a change that stops recording one of them fails loudly.
EXPECTED_KINDS = [
    ("write", "config.json"),
    ("write", "rounds/r00/ckpt"),
    ("write", "rounds/rNN/ckpt"),
    ("write", "rounds/rNN/ckpt-random_prune"),
    ("write", "rounds/r00 outputs"),
    ("write", "rounds/rNN outputs"),
    ("write", "a temporary folder"),
    ("before", "pruner"),
    ("after", "pruner"),
    ("before", "pruner.old"),
    ("after", "pruner.old"),
    ("before", "history.jsonl"),
    ("after", "history.jsonl"),
    ("before", "report.png"),
    ("after", "report.png"),
    ("mid-delete", "rounds/r00/ckpt"),
    ("mid-delete", "rounds/rNN/ckpt"),
    ("mid-delete", "rounds/rNN/ckpt-random_prune"),
    ("mid-delete", "pruner.old"),
]


def test_one_state_of_every_kind_resumes_identically(recording, tmp_path):
    kinds = {s.kind for s in recording.states}
    assert sorted(kinds) == sorted(EXPECTED_KINDS), sorted(kinds)
    failed = []
    for state in _one_of_each_kind(recording):
        try:
            _resume(recording, state, tmp_path)
        except Exception as e:  # noqa: BLE001 - collect them all, then fail once
            failed.append(f"{state}: {type(e).__name__}: {str(e)[:300]}")
    assert not failed, f"{len(failed)} of {len(kinds)} kinds:\n" + "\n".join(failed)


@pytest.mark.skipif(not os.environ.get("LOTTERYIR_KILL_SWEEP"), reason="set LOTTERYIR_KILL_SWEEP=1 for every state")
def test_every_recorded_instant_resumes_identically(recording, tmp_path):
    failed = []
    for state in recording.states:
        try:
            _resume(recording, state, tmp_path)
        except Exception as e:  # noqa: BLE001 - collect them all, then fail once
            failed.append(f"{state}: {type(e).__name__}: {str(e)[:300]}")
    assert not failed, f"{len(failed)} of {len(recording.states)} states:\n" + "\n".join(failed)


# Where a real SIGKILL lands: the run is stopped (SIGSTOP) as soon as ``reached`` holds, the directory
# is checked to be still ``before`` the next milestone, then the process is killed.
SIGKILLS = {
    "round 0 training": ("rounds/r00/ckpt/train_state.json", "rounds/r00/metrics.json"),
    "last round's control training": ("rounds/r02/ckpt-random_prune/train_state.json", "rounds/r02/metrics.json"),
}


@pytest.mark.parametrize("name", list(SIGKILLS))
def test_sigkill_mid_run_resumes_identically(recording, tmp_path, name):
    reached, before = SIGKILLS[name]
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.runs", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / reached).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGSTOP)
        landed = (out / reached).exists() and not (out / before).exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the run ended by itself ({proc.returncode}): {stderr[-2000:]}"
    assert landed, f"the kill landed outside {name}: {reached} exists={(out / reached).exists()}, {before} too"
    assert not (out / "report.png").exists() or len(read_history(out)) < 3  # not a finished run
    run(out)
    assert_same_run(recording.reference, out)
