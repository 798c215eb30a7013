"""Units of work: what a benchmark runs, in which order, on how many worker processes, and its estimate.

A unit is one independent piece of a benchmark (a seed's IMP run, one interpolation path, one
ticket). Its result is stored into the report the moment it finishes and the report is written
atomically, so a kill loses only the units in flight; the benchmark lists only unfinished units, so
a rerun skips the finished ones. A unit may wait for others (``after``): it starts once they are
finished, and what it runs may depend on their results (``start``).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, ...]


@dataclass
class Unit:
    """One unit: its key (its place under ``report["results"]`` and its name), its cost and its work.

    ``call`` is ``(function, *args)``, picklable (a module-level function), run in a worker; or
    ``start()`` returns such a call, or the result itself (nothing to run), once ``after`` are done.
    ``store(result)`` puts the result in the report (default: ``results[key[0]][key[1]]... = result``).
    ``steps`` and ``evals`` (evaluations of every test image) and ``builds`` give the estimate.
    """

    key: Key
    kind: str
    steps: float = 0.0
    evals: float = 0.0
    builds: int = 1
    call: tuple[Any, ...] | None = None
    start: Callable[[], tuple[Any, ...] | dict[str, Any] | None] | None = None
    after: tuple[Key, ...] = ()
    store: Callable[[dict[str, Any]], None] | None = None

    def name(self) -> str:
        return " ".join(self.key)


@dataclass
class Timing:
    """What the plan measured: seconds per optimizer step, per evaluation of every test image, per build."""

    step: float = 0.0
    eval: float = 0.0
    build: float = 0.0
    load: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def seconds(self, u: Unit) -> float:
        return u.steps * self.step + u.evals * self.eval + u.builds * self.build


def put(tree: dict[str, Any], key: Key, value: Any) -> None:
    """``tree[key[0]][key[1]]...[key[-1]] = value``, creating the levels."""
    for k in key[:-1]:
        tree = tree.setdefault(k, {})
    tree[key[-1]] = value


def estimate(
    units: list[Unit], t: Timing, workers: int, cores: int | None = None, threads: int = 1
) -> dict[str, float]:
    """Seconds of work in all, and on the clock: ``units`` scheduled as :func:`execute` runs them.

    The executor starts the first unit in order whose inputs have finished whenever one of ``workers`` is
    free, so the clock is a replay of that (3 equal units on 2 workers take 2 units' time, not 1.5).
    More workers x threads than ``cores`` share the cores: each unit then runs that much slower.
    """
    secs = {u.key: t.seconds(u) for u in units}
    slow = max(1.0, workers * threads / cores) if cores else 1.0
    queue, running, finished, now = list(units), [], set(), 0.0  # running: (end, key)
    while queue or running:
        while len(running) < workers:
            ready = next((u for u in queue if all(a in finished or a not in secs for a in u.after)), None)
            if ready is None:
                break
            queue.remove(ready)
            running.append((now + secs[ready.key] * slow, ready.key))
        if not running:
            break  # waits on a unit that is not in the plan and not finished: nothing more can start
        running.sort()
        now, key = running.pop(0)
        finished.add(key)
    return {"units": len(units), "work_seconds": sum(secs.values()), "wall_seconds": now}


def invoke(call: tuple[Any, ...]) -> dict[str, Any]:
    """Run ``(function, *args)`` (in a worker process, or here)."""
    function, *args = call
    return function(*args)


def execute(
    units: list[Unit],
    workers: int,
    done: Callable[[Unit, dict[str, Any], float], None],
) -> tuple[list[Unit], list[Unit]]:
    """Run ``units`` in order as their inputs finish, ``workers`` at a time; ``done(unit, result, seconds)``
    after each.

    A unit that raises is reported and the others go on (their results are kept); what waits on it
    stays pending for a rerun. Returns (failed, left waiting). ``workers`` > 1 runs each call in a
    fresh interpreter (spawn: no forked torch thread pools); 1 runs them here, in order.
    """
    queue, pending = list(units), {u.key for u in units}
    failed: list[Unit] = []
    began: dict[Key, float] = {}

    def take() -> tuple[Unit, Any] | None:
        for u in queue:
            if any(a in pending for a in u.after):
                continue
            call = u.call if u.call is not None else (u.start() if u.start else None)
            if call is not None:
                queue.remove(u)
                began[u.key] = time.perf_counter()
                return u, call
        return None

    def finish(u: Unit, result: dict[str, Any]) -> None:
        if u.store is not None:
            u.store(result)
        pending.discard(u.key)
        done(u, result, time.perf_counter() - began[u.key])

    def fail(u: Unit, e: BaseException) -> None:
        failed.append(u)
        print(f"error: {u.name()} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)

    if workers == 1:
        while (got := take()) is not None:
            u, call = got
            if isinstance(call, dict):
                finish(u, call)
                continue
            try:
                result = invoke(call)
            except Exception as e:  # noqa: BLE001  (reported; a rerun retries it)
                fail(u, e)
                continue
            finish(u, result)
        return failed, queue
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running: dict[cf.Future[dict[str, Any]], Unit] = {}
        while True:
            while len(running) < workers and (got := take()) is not None:
                u, call = got
                if isinstance(call, dict):
                    finish(u, call)
                else:
                    running[pool.submit(invoke, call)] = u
            if not running:
                break
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for f in finished:
                u = running.pop(f)
                try:
                    result = f.result()
                except Exception as e:  # noqa: BLE001
                    fail(u, e)
                    continue
                finish(u, result)
    return failed, queue
