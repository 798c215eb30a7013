"""Kill a run at any instant, rerun it: masks, weights and history equal an uninterrupted run's.

After a SIGKILL only the disk survives, and the disk changes only when a file is renamed into
place (every write is a temporary file, then ``os.replace``). The reference run below records the
run directory just before and just after every rename (hard-linked copies, cheap): those are all
the states a kill can leave, up to half-deleted folders. Tests resume from them, and from real
SIGKILLs of a separate process at random times.

``LOTTERYIR_KILL_SWEEP=1`` resumes from every recorded state (a few minutes); by default
hypothesis draws a few, plus the states the issue reported by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lotteryir.runs.lock import LOCK_FILE

from .runs import assert_same_run, run

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class State:
    """The run directory as a kill at one instant leaves it."""

    index: int
    when: str  # "before" or "after" the rename
    target: str  # the renamed file, relative to the run directory
    path: Path

    def __str__(self) -> str:
        return f"#{self.index} {self.when} {self.target}"


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

    os.replace = recording_replace
    try:
        start = time.perf_counter()
        run(reference)
        seconds = time.perf_counter() - start
    finally:
        os.replace = real_replace
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


@settings(
    max_examples=int(os.environ.get("LOTTERYIR_KILL_EXAMPLES", "5")),
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_kill_at_any_recorded_instant_resumes_identically(recording, tmp_path_factory, data):
    state = data.draw(st.sampled_from(recording.states), label="state")
    _resume(recording, state, tmp_path_factory.mktemp("any"))


@pytest.mark.skipif(not os.environ.get("LOTTERYIR_KILL_SWEEP"), reason="set LOTTERYIR_KILL_SWEEP=1 for every state")
def test_every_recorded_instant_resumes_identically(recording, tmp_path):
    failed = []
    for state in recording.states:
        try:
            _resume(recording, state, tmp_path)
        except Exception as e:  # noqa: BLE001 - collect them all, then fail once
            failed.append(f"{state}: {type(e).__name__}: {str(e)[:300]}")
    assert not failed, f"{len(failed)} of {len(recording.states)} states:\n" + "\n".join(failed)


@settings(
    max_examples=int(os.environ.get("LOTTERYIR_SIGKILL_EXAMPLES", "2")),
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(fraction=st.floats(min_value=0.0, max_value=1.0))
def test_sigkill_at_a_random_time_resumes_identically(recording, tmp_path_factory, fraction):
    out = tmp_path_factory.mktemp("sigkill") / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.runs", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Importing torch takes a few seconds before the run starts; spread kills over both.
    time.sleep(fraction * (recording.seconds + 4.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run(out)
    assert_same_run(recording.reference, out)
