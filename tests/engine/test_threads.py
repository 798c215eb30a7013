"""The CPU thread policy: idle cores when work starts, OMP_NUM_THREADS wins, applied before training."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch

from lotteryir.engine import threads as threads_mod
from lotteryir.engine.threads import auto_threads, busy_cores_of_others, resolve_threads


def _fake_proc(monkeypatch, cores: int, usable: int, busy_fraction: float) -> None:
    """/proc/stat advancing by 1000 jiffies per core with ``busy_fraction`` of the machine busy."""
    ticks = itertools.count()

    def jiffies():
        t = next(ticks) * 1000 * cores
        return round(t * busy_fraction), t

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_mod, "_cpu_jiffies", jiffies)
    monkeypatch.setattr(threads_mod, "_own_cpu_seconds", lambda: 0.0)
    monkeypatch.setattr(threads_mod, "_usable_cores", lambda: usable)
    monkeypatch.setattr(threads_mod.os, "cpu_count", lambda: cores)


@pytest.mark.parametrize(
    "cores, busy_fraction, expected",
    [(2, 0.0, 2), (2, 0.5, 1), (2, 1.0, 1), (8, 0.25, 6), (8, 0.9, 1), (4, 0.30, 3)],
)
def test_auto_uses_the_idle_cores(monkeypatch, cores, busy_fraction, expected):
    _fake_proc(monkeypatch, cores, cores, busy_fraction)
    choice = auto_threads(interval=0.0)
    assert choice.threads == expected
    assert "busy" in choice.reason


def test_auto_honours_omp_num_threads_and_affinity(monkeypatch):
    _fake_proc(monkeypatch, cores=8, usable=2, busy_fraction=0.0)
    assert auto_threads(interval=0.0).threads == 2  # only the cores this process may run on
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert auto_threads(interval=0.0) == threads_mod.ThreadChoice(3, "OMP_NUM_THREADS")


def test_resolve_threads_validates():
    assert resolve_threads(None) is None
    assert resolve_threads(4).threads == 4 and resolve_threads("2").threads == 2
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            resolve_threads(bad)


def test_busy_process_is_seen_on_this_machine():
    if busy_cores_of_others(0.05) is None:
        pytest.skip("no /proc/stat here")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        seen = max(busy_cores_of_others(0.3) for _ in range(3))
    finally:
        hog.kill()
        hog.wait()
    assert seen >= 0.5  # the busy loop holds one core (other jobs may add more)


def test_trainer_applies_its_thread_count_before_the_first_step(monkeypatch):
    from lotteryir.engine import RestorationTrainer, TrainConfig
    from lotteryir.pruning import RoundContext

    data = [{"input": torch.rand(3, 16, 16), "target": torch.rand(3, 16, 16)} for _ in range(4)]
    seen = []
    model = torch.nn.Conv2d(3, 3, 3, padding=1)
    torch.set_num_threads(1)
    trainer = RestorationTrainer(
        data,
        TrainConfig(steps=2, batch_size=2, device="cpu", checkpoint_every=None, threads=2),
        progress=lambda p: seen.append(torch.get_num_threads()),
    )
    trainer(model, RoundContext(round=0, density=1.0))
    assert seen == [2, 2] and trainer.threads.threads == 2


@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 1), (4, 2), (16, 8)])
def test_a_runs_default_count_is_fixed_by_the_machine_whatever_the_load(monkeypatch, cores, expected):
    """The same prune command finds the same ticket on a quiet and on a busy machine: its thread count
    (which changes float results in their last bits) must not follow the load; --threads auto does."""
    from lotteryir.runs import RunConfig

    from ..tiny_run import TINY

    settings = {k: v for k, v in TINY.items() if k != "threads"}
    counts, auto = [], []
    for busy in (0.0, 0.5, 1.0):
        _fake_proc(monkeypatch, cores, cores, busy)
        monkeypatch.setattr(threads_mod, "busy_cores_of_others", lambda interval=0.25, b=busy: b * cores)
        counts.append(RunConfig(**settings).resolved().threads)
        auto.append(RunConfig(**settings, threads="auto").resolved().threads)
    assert counts == [expected] * 3
    assert auto[0] == cores and (cores == 1 or auto[-1] < auto[0])  # by load: it differs
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert RunConfig(**settings).resolved().threads == 3  # an explicit environment still wins
