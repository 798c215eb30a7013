"""A run's training curves as files other tools read: CSV always, TensorBoard on request (``--log``).

Under ``RUN/logs/``:

- ``steps.csv``: one row per optimizer step of every training (ticket and controls): round, kind,
  step within the round, global step, loss, learning rate. The global step counts the ticket's
  optimizer steps over all rounds, so one curve runs through the whole search; a control's step k of
  round r sits at the ticket's global step where round r started, plus k.
- ``rounds.csv``: one row per finished round: density, PSNR and SSIM per test set with the degraded
  input's beside them, the means, each control's mean PSNR, and the cost (this round's and the run's
  so far). Rewritten from ``history.jsonl`` after every round, so it always agrees with it.
- ``layers.csv``: the density of every prunable tensor in every finished round.
- ``tensorboard/`` (``--log tensorboard``): the same numbers as scalars on the global step, one event
  file per round.

A resumed run continues the same curves. Steps a killed process logged after its last checkpoint are
trained again: when a step arrives that is already in ``steps.csv``, the rows from it on (of that round
and kind) are dropped first, and that round's event file is rebuilt from the CSV. So neither file ever
holds a step twice.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._files import atomic_write_text
from ..engine import TrainProgress
from ..pruning import Mask
from .cost import with_cost
from .layout import RunLayout
from .tensorboard import RoundEvents, check_tensorboard

log = logging.getLogger(__name__)

__all__ = ["LOG_KINDS", "RunLogs", "parse_log", "read_csv", "round_row", "ticket_offsets"]

LOG_KINDS = ("csv", "tensorboard")
STEP_COLUMNS = ("round", "kind", "step", "global_step", "loss", "lr")
LAYER_COLUMNS = ("round", "layer", "density", "remaining", "total")
ROUND_COLUMNS: tuple[str, ...] = ("round", "density", "remaining", "total")
ROUND_COLUMNS += ("mean_psnr", "mean_input_psnr", "mean_ssim", "mean_input_ssim")
COST_COLUMNS = ("steps", "train_seconds", "total_steps", "total_train_seconds")


def parse_log(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"csv,tensorboard"`` (or a list) as a checked tuple; ``tensorboard`` implies ``csv``."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    kinds = {item.strip().lower() for item in items if item.strip()}
    unknown = sorted(kinds - set(LOG_KINDS))
    if unknown:
        raise ValueError(f"--log: unknown logger {', '.join(unknown)}; choose from {', '.join(LOG_KINDS)}")
    if "tensorboard" in kinds:
        check_tensorboard()
        kinds.add("csv")  # the CSV is the record the event files are rebuilt from
    return tuple(k for k in LOG_KINDS if k in kinds)


def _csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    """The complete rows of a CSV file this module wrote (a half-written last line is left out)."""
    if not path.is_file():
        return []
    text = path.read_text()
    if text and not text.endswith("\n"):  # a killed append: its last line is incomplete
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def round_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One ``rounds.csv`` row of a history entry that carries ``cost`` and ``cost_total`` (see with_cost)."""
    row: dict[str, Any] = {k: entry.get(k) for k in ROUND_COLUMNS}
    for label, scores in sorted(entry.get("eval", {}).items()):
        for key in ("psnr", "input_psnr", "ssim", "input_ssim"):
            row[f"{label}_{key}"] = scores.get(key)
    for kind, control in sorted((entry.get("controls") or {}).items()):
        row[f"{kind}_mean_psnr"] = control.get("mean_psnr")
    row.update(steps=entry["cost"]["steps"], train_seconds=entry["cost"]["train_seconds"])
    row.update(total_steps=entry["cost_total"]["steps"], total_train_seconds=entry["cost_total"]["train_seconds"])
    return row


def layer_rows(r: int, mask: Mask) -> list[dict[str, Any]]:
    """``layers.csv`` rows of round ``r``'s mask."""
    rows = []
    for name, keep in mask.items():
        remaining, total = int(keep.sum()), keep.numel()
        rows.append({"round": r, "layer": name, "density": remaining / total, "remaining": remaining, "total": total})
    return rows


def ticket_offsets(history: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Global step at which each round's ticket training starts (round r+1's is where round r ended)."""
    offsets, total = {}, 0
    for entry in sorted(history, key=lambda h: h["round"]):
        offsets[entry["round"]] = total
        total += int((entry.get("train") or {}).get("steps") or 0)
    offsets[max(offsets, default=-1) + 1] = total
    return offsets


class RunLogs:
    """Writes a run's ``logs/`` while it trains (rank 0 only; see the module docstring)."""

    def __init__(self, layout: RunLayout, kinds: Sequence[str]) -> None:
        self.layout, self.kinds = layout, tuple(kinds)
        self.dir = layout.root / "logs"
        self.steps_path = self.dir / "steps.csv"
        self._last: dict[tuple[int, str], int] = {}  # (round, kind) -> last step in steps.csv
        self._offsets: dict[int, int] = {}
        self._events: RoundEvents | None = None
        self._started = False

    @property
    def enabled(self) -> bool:
        return bool(self.kinds)

    def start(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Open the logs of a run that has finished the rounds in ``history`` (at its start or resume)."""
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = [r for r in read_csv(self.steps_path) if self._valid(r)]
        # Rewrite once: drops a half-written last line and rows of rounds the history no longer has.
        done = {h["round"] for h in history}
        later = max(done, default=-1) + 1
        rows = [r for r in rows if int(r["round"]) in done or int(r["round"]) == later]
        atomic_write_text(self.steps_path, _csv_text(STEP_COLUMNS, rows))
        self._last = {}
        for r in rows:
            key = (int(r["round"]), r["kind"])
            self._last[key] = max(self._last.get(key, 0), int(r["step"]))
        self._offsets = ticket_offsets(history)
        if "tensorboard" in self.kinds:
            self._events = RoundEvents(self.dir / "tensorboard")
            self._events.sync(history, rows, self._offsets, self._layer_rows())
        self._started = True

    @staticmethod
    def _valid(row: Mapping[str, str]) -> bool:
        try:
            int(row["round"]), int(row["step"]), int(row["global_step"]), float(row["loss"]), float(row["lr"])
        except (KeyError, TypeError, ValueError):
            return False
        return bool(row.get("kind"))

    def step(self, p: TrainProgress, kind: str) -> None:
        """Log one optimizer step (called by the run's progress hook)."""
        if not self._started:
            return
        key = (p.round, kind)
        if p.step <= self._last.get(key, 0):  # trained again after a resume: drop the stale rows first
            self._drop_from(p.round, kind, p.step)
        offset = self._offsets.get(p.round, self._offsets.get(max(self._offsets, default=0), 0))
        row = {"round": p.round, "kind": kind, "step": p.step, "global_step": offset + p.step}
        row.update(loss=repr(float(p.loss)), lr=repr(float(p.lr)))
        with self.steps_path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=list(STEP_COLUMNS), lineterminator="\n").writerow(row)
        self._last[key] = p.step
        if self._events is not None:
            self._events.step(p.round, kind, offset + p.step, float(p.loss), float(p.lr))

    def _drop_from(self, r: int, kind: str, step: int) -> None:
        rows = [
            row
            for row in read_csv(self.steps_path)
            if not (int(row["round"]) == r and row["kind"] == kind and int(row["step"]) >= step)
        ]
        atomic_write_text(self.steps_path, _csv_text(STEP_COLUMNS, rows))
        self._last[(r, kind)] = max(
            (int(row["step"]) for row in rows if int(row["round"]) == r and row["kind"] == kind), default=0
        )
        log.debug("logs: round %d %s resumed at step %d; later rows dropped", r, kind, step)
        if self._events is not None:
            self._events.rebuild(r, [row for row in rows if int(row["round"]) == r])

    def round_end(self, history: Sequence[Mapping[str, Any]], mask: Mask) -> None:
        """Write ``rounds.csv`` and ``layers.csv`` after round ``history[-1]`` is committed."""
        if not self._started:
            return
        entries = with_cost(history)
        rows = [round_row(e) for e in entries]
        seen = {c for row in rows for c in row}
        # Fixed columns first, per-set and control columns in name order, the cost last.
        middle = sorted(seen - set(ROUND_COLUMNS) - set(COST_COLUMNS))
        columns = [*ROUND_COLUMNS, *middle, *COST_COLUMNS]
        atomic_write_text(self.dir / "rounds.csv", _csv_text(columns, rows))
        r = history[-1]["round"]
        layers = [row for row in self._layer_rows() if int(row["round"]) < r]
        layers += layer_rows(r, mask)
        layers += self._missing_layer_rows({int(row["round"]) for row in layers}, [e["round"] for e in entries])
        layers.sort(key=lambda row: (int(row["round"]), str(row["layer"])))
        atomic_write_text(self.dir / "layers.csv", _csv_text(LAYER_COLUMNS, layers))
        self._offsets = ticket_offsets(history)
        if self._events is not None:
            self._events.round_end(entries[-1], self._offsets[r + 1], layers)

    def _layer_rows(self) -> list[dict[str, Any]]:
        return [dict(row) for row in read_csv(self.dir / "layers.csv")]

    def _missing_layer_rows(self, have: set[int], rounds: Iterable[int]) -> list[dict[str, Any]]:
        """Rows for finished rounds that ``layers.csv`` lacks (a run that started logging late), from their masks."""
        out: list[dict[str, Any]] = []
        for r in rounds:
            path = self.layout.mask(r)
            if r in have or not path.is_file():
                continue
            try:
                mask = Mask.load(path)
            except (OSError, ValueError) as e:  # a damaged mask is the run's problem, not the log's
                log.warning("logs: cannot read %s (%s); its layers are left out of layers.csv", path, e)
                continue
            out += layer_rows(r, mask)
        return out

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None
