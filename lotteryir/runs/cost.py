"""What a run has spent: optimizer steps and training wall time, per round and in total.

A round's cost is every training it ran, the ticket's and each control's; evaluation is not
counted (it does not grow with the method's choice of how often to train). Every number comes
from the trainings' own records (``train.steps``, ``train.seconds``), which survive a resume: a
training resumed from its checkpoint reports the steps and seconds of all its sittings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["round_cost", "run_cost", "with_cost"]


def _training(train: Mapping[str, Any] | None) -> tuple[int, float]:
    """(optimizer steps, wall seconds) of one training record; zero for a missing one."""
    if not train:
        return 0, 0.0
    steps = train.get("steps")
    seconds = train.get("seconds")
    steps = int(steps) if isinstance(steps, (int, float)) and math.isfinite(steps) else 0
    secs = float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) else 0.0
    return steps, secs


def round_cost(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The trainings, optimizer steps and training seconds of one history entry (ticket plus controls)."""
    records = [entry.get("train")] + [c.get("train") for c in (entry.get("controls") or {}).values()]
    spent = [_training(t) for t in records if t]
    return {
        "trainings": sum(1 for steps, _ in spent if steps > 0),
        "steps": sum(steps for steps, _ in spent),
        "train_seconds": sum(secs for _, secs in spent),
    }


def run_cost(history: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The total cost of the rounds in ``history``."""
    total: dict[str, Any] = {"trainings": 0, "steps": 0, "train_seconds": 0.0}
    for entry in history:
        cost = entry.get("cost") or round_cost(entry)
        for key in total:
            total[key] += cost[key]
    return total


def with_cost(history: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the entries with ``cost`` (the round's; computed for histories older than it) and
    ``cost_total`` (all rounds up to and including this one)."""
    out, total = [], {"trainings": 0, "steps": 0, "train_seconds": 0.0}
    for entry in history:
        cost = dict(entry.get("cost") or round_cost(entry))
        total = {k: total[k] + cost[k] for k in total}
        out.append({**entry, "cost": cost, "cost_total": dict(total)})
    return out
