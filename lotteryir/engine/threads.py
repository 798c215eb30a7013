"""How many intra-op threads to use on a CPU that other processes may share.

torch starts one OpenMP thread per core. When another process keeps one of two cores busy,
the thread that shares its core is descheduled for whole time slices while its partner spins
at every barrier: a mirl/tiny training step measured 14 s instead of 0.12 s. lotteryir uses
only the cores that are idle when work starts (:func:`auto_threads`).

Changing OpenMP's wait policy instead was measured and rejected (``python benchmarks/threads.py
--reps 3 --steps 40``, 2 cores, mirl/tiny steps/s): passive waiting made two threads slower than
one on a quiet machine (5.18 against 8.47), and with a busy neighbour two passive threads stayed
far below one thread (3.24 against 8.65).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

__all__ = ["ThreadChoice", "auto_threads", "machine_threads", "resolve_threads", "apply_threads"]


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why it was chosen (the CLI shows ``reason``)."""

    threads: int
    reason: str


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where there is no /proc."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def _own_cpu_seconds() -> float:
    return time.process_time()


def busy_cores_of_others(interval: float = 0.25) -> float | None:
    """Cores that other processes kept busy over ``interval`` seconds (None: cannot tell here)."""
    first = _cpu_jiffies()
    if first is None:
        return None
    own0, wall0 = _own_cpu_seconds(), time.perf_counter()
    time.sleep(interval)
    second = _cpu_jiffies()
    own, wall = _own_cpu_seconds() - own0, time.perf_counter() - wall0
    if second is None or second[1] <= first[1]:
        return None
    cores = os.cpu_count() or 1
    busy = cores * (second[0] - first[0]) / (second[1] - first[1])  # cores busy on the whole machine
    return max(0.0, busy - own / max(wall, 1e-9))


def auto_threads(interval: float = 0.25) -> ThreadChoice:
    """The number of cores that are free right now (at least 1); ``OMP_NUM_THREADS`` wins if set."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return ThreadChoice(int(env), "OMP_NUM_THREADS")
    usable = _usable_cores()
    others = busy_cores_of_others(interval)
    if others is None:
        return ThreadChoice(usable, f"{usable} cores")
    # Busy cores elsewhere on the machine are assumed spread evenly over it.
    others_here = others * usable / max(os.cpu_count() or usable, usable)
    threads = max(1, min(usable, int(usable - others_here + 0.5)))
    return ThreadChoice(threads, f"auto: {others_here:.1f} of {usable} cores busy with other work")


def machine_threads() -> ThreadChoice:
    """Half the usable cores (at least 1): a count fixed by the machine, not by what else runs now.

    Float results depend on the thread count in their last bits, so a count read from the load
    (:func:`auto_threads`) makes the same command find different tickets on a busy and a quiet
    machine. Half the cores is the same every time and leaves room for a job as large beside it
    (``python benchmarks/threads.py``: one thread of two cores trains at 0.81x two threads on a quiet
    machine, two threads beside a busy process at 0.36x of one). ``OMP_NUM_THREADS`` wins if set.
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return ThreadChoice(int(env), "OMP_NUM_THREADS")
    usable = _usable_cores()
    threads = max(1, usable // 2)
    return ThreadChoice(
        threads, f"half of this machine's {usable} cores: the same ticket whatever else runs (--threads auto: by load)"
    )


def resolve_threads(spec: int | str | None) -> ThreadChoice | None:
    """``"auto"`` -> :func:`auto_threads`; a positive int -> itself; None -> leave torch's setting."""
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec.strip().lower() == "auto":
            return auto_threads()
        if not spec.strip().isdigit():
            raise ValueError(f"threads must be 'auto' or a positive integer, got {spec!r}")
        spec = int(spec)
    if isinstance(spec, bool) or not isinstance(spec, int) or spec < 1:
        raise ValueError(f"threads must be 'auto' or a positive integer, got {spec!r}")
    return ThreadChoice(spec, "given")


def apply_threads(choice: ThreadChoice | None) -> None:
    """Set torch's intra-op thread count (no-op for None or an unchanged count)."""
    if choice is not None and torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
