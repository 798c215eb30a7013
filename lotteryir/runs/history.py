"""A run's history: one JSON line per finished round, read, written and rebuilt after a crash.

Each round's ``metrics.json`` is written before the round is committed (the pruner swap), and
``history.jsonl`` after it; so the committed rounds' own records are the truth, and a history that
disagrees with them (a crash between the two, a damaged line) is rebuilt from them.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from typing import Any

from .._files import atomic_write_text
from ..pruning import RoundRecord
from .cost import round_cost
from .errors import RunError
from .layout import RunLayout, committed_round

log = logging.getLogger(__name__)


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The finished rounds of a run, oldest first."""
    layout = RunLayout(run_dir)
    path = layout.history
    if not path.is_file():
        if committed_round(layout) >= 0:  # deleted, or a crash came between a round's commit and this file
            raise RunError(
                f"{path} is missing, though the run has finished rounds; rerunning the prune command with the same "
                "--out rebuilds it from rounds/*/metrics.json"
            )
        return []
    out = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise RunError(
                f"{path} is damaged at line {number} ({e.msg}); rerunning the prune command with the same "
                "--out rebuilds it from rounds/*/metrics.json"
            ) from e
        if not isinstance(entry, dict) or not isinstance(entry.get("round"), int):
            raise RunError(
                f"{path} is damaged at line {number} (not a round entry); rerunning the prune command rebuilds it"
            )
        out.append(entry)
    return out


def finished_round(run_dir: str | os.PathLike, round: int | None = None) -> int:
    """``round`` if the run has finished it (default: its last finished round), else a RunError."""
    done = [h["round"] for h in read_history(run_dir)]
    if not done:
        raise RunError(f"{run_dir} has no finished round yet")
    r = done[-1] if round is None else round
    if r not in done:
        raise RunError(f"round {r} of {run_dir} is not finished; finished rounds: {', '.join(map(str, done))}")
    return r


def write_history(layout: RunLayout, entries: list[dict[str, Any]]) -> None:
    """Replace the history with ``entries`` (atomically)."""
    atomic_write_text(layout.history, "".join(json.dumps(h) + "\n" for h in entries))


def append_round(layout: RunLayout, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Write round ``entry["round"]`` into the history (dropping any later ones); returns the new history."""
    # Round 0's commit comes before its history line: a missing file here is the first, not a loss.
    current = read_history(layout.root) if layout.history.is_file() else []
    history = [h for h in current if h["round"] < entry["round"]] + [entry]
    write_history(layout, history)
    return history


def repair_history(layout: RunLayout, done: int) -> tuple[list[dict[str, Any]], bool]:
    """Bring the history in step with the committed rounds ``0..done``; returns (entries, whether it changed)."""
    try:
        current = read_history(layout.root)
    except RunError:
        current = None  # damaged: rebuilt below from the rounds' own records
    by_round = {h["round"]: h for h in current or []}
    entries = [committed_entry(layout, r, by_round.get(r)) for r in range(done + 1)]
    changed = current != entries
    if changed and (entries or layout.history.exists()):
        log.info("rebuilding %s from the %d committed round(s)", layout.history, len(entries))
        write_history(layout, entries)
    return entries, changed


def committed_entry(layout: RunLayout, r: int, fallback: dict[str, Any] | None) -> dict[str, Any]:
    """Round ``r``'s record from its own ``metrics.json``, else the history's line for it."""
    path = layout.metrics(r)
    try:
        entry = json.loads(path.read_text())
        if isinstance(entry, dict) and entry.get("round") == r:
            return entry
    except (OSError, json.JSONDecodeError):
        pass
    if fallback is not None:
        return fallback
    raise RunError(
        f"{path} is missing or damaged and {layout.history} has no round {r} either; "
        f"start again with a new --out ({layout.root} is left as it is)"
    )


def mean_scores(eval_summary: dict[str, dict[str, float]], of: str = "restored") -> tuple[float, float]:
    """Mean PSNR and SSIM over test sets, of the restored images or (``of="input"``) the degraded inputs."""
    prefix = {"restored": "", "input": "input_"}[of]
    values = [v for v in eval_summary.values() if f"{prefix}psnr" in v]
    if not values or len(values) != len(eval_summary):
        return float("nan"), float("nan")
    return (
        statistics.fmean(v[f"{prefix}psnr"] for v in values),
        statistics.fmean(v[f"{prefix}ssim"] for v in values),
    )


def history_entry(record: RoundRecord) -> dict[str, Any]:
    """The history line (and ``metrics.json``) of a finished round."""
    m = record.metrics
    entry = {
        "round": record.round,
        "density": record.density,
        "remaining": record.remaining,
        "total": record.total,
        "seconds": record.seconds,
        "train": m.get("train", {}),
        "eval": m.get("eval", {}),
        "mean_psnr": m.get("mean_psnr"),
        "mean_ssim": m.get("mean_ssim"),
        "mean_input_psnr": m.get("mean_input_psnr"),
        "mean_input_ssim": m.get("mean_input_ssim"),
        "controls": {
            kind: {
                "eval": v.get("eval", {}),
                "mean_psnr": v.get("mean_psnr"),
                "mean_ssim": v.get("mean_ssim"),
                "train": v.get("train", {}),
            }
            for kind, v in record.controls.items()
        },
        # What the method did in the round (early-bird's stop step, gmp's schedule); absent for imp.
        **({"method": m["method"]} if "method" in m else {}),
        # How the scores were made (noise protocol, channels, crop, Y channel); absent in older runs.
        **({"protocol": m["protocol"]} if "protocol" in m else {}),
    }
    entry["cost"] = round_cost(entry)
    return entry
