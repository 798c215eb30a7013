"""TensorBoard event files of a run (``--log tensorboard``): one file per round, rebuilt from the CSV.

``logs/steps.csv`` is the record (see :mod:`.logs`); the event files are a view of it that TensorBoard
reads. Each round's scalars go to a file of its own (``events.out.tfevents.*.roundNNN``) so that a round
can be rewritten without touching the others: the round a resumed run continues is rebuilt from the CSV
at the start, and so is every finished round whose file was not closed (``complete.json`` lists those
that were). TensorBoard reads the files in name order, which is the order they were written.

tensorboard is an optional dependency, imported only here and only when a run asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._files import atomic_write_text
from .cost import with_cost
from .errors import RunError

COMPLETE_FILE = "complete.json"
INSTALL_HINT = "pip install 'lotteryir[tensorboard]'"


def check_tensorboard() -> None:
    """Raise a :class:`RunError` that says how to install tensorboard when it is missing."""
    try:
        import tensorboard  # type: ignore[import-untyped]  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as e:
        raise RunError(f"--log tensorboard needs the tensorboard package ({e}); install it with {INSTALL_HINT}") from e


def round_scalars(entry: Mapping[str, Any], layers: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The per-round scalars of a history entry (with ``cost``/``cost_total``) and its layer rows."""
    out: dict[str, float] = {"round/index": float(entry["round"]), "density/overall": float(entry["density"])}
    for key in ("mean_psnr", "mean_input_psnr", "mean_ssim", "mean_input_ssim"):
        if entry.get(key) is not None:
            out[f"eval/{key}"] = float(entry[key])
    for label, scores in sorted(entry.get("eval", {}).items()):
        for key in ("psnr", "input_psnr", "ssim", "input_ssim"):
            if scores.get(key) is not None:
                out[f"eval/{label}/{key}"] = float(scores[key])
    for kind, control in sorted((entry.get("controls") or {}).items()):
        if control.get("mean_psnr") is not None:
            out[f"controls/{kind}/mean_psnr"] = float(control["mean_psnr"])
    cost, total = entry["cost"], entry["cost_total"]
    out.update({"cost/round_steps": float(cost["steps"]), "cost/round_train_seconds": float(cost["train_seconds"])})
    out.update({"cost/total_steps": float(total["steps"]), "cost/total_train_seconds": float(total["train_seconds"])})
    for row in layers:
        if int(row["round"]) == entry["round"]:
            out[f"density/{row['layer']}"] = float(row["density"])
    return out


def step_tags(kind: str) -> tuple[str, str]:
    """The loss and learning-rate tags of a training: ``train/...`` for the ticket, ``<control>/...``."""
    prefix = "train" if kind == "ticket" else f"train_{kind}"
    return f"{prefix}/loss", f"{prefix}/lr"


class RoundEvents:
    """The event files of one run's ``logs/tensorboard`` directory; one round's writer is open at a time."""

    def __init__(self, directory: Path) -> None:
        check_tensorboard()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._writer: Any = None
        self._round: int | None = None

    # -- files -----------------------------------------------------------------
    def _files(self, r: int) -> list[Path]:
        return sorted(self.dir.glob(f"events.out.tfevents.*.round{r:03d}"))

    def _complete(self) -> set[int]:
        path = self.dir / COMPLETE_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return set()
        return {int(r) for r in data} if isinstance(data, list) else set()

    def _mark(self, rounds: set[int]) -> None:
        atomic_write_text(self.dir / COMPLETE_FILE, json.dumps(sorted(rounds)))

    def _open(self, r: int) -> None:
        """Start round ``r``'s file afresh (its old files, a killed process's, are removed)."""
        from torch.utils.tensorboard import SummaryWriter

        self.close()
        self._mark(self._complete() - {r})
        for path in self._files(r):
            path.unlink(missing_ok=True)
        self._writer = SummaryWriter(str(self.dir), filename_suffix=f".round{r:03d}", flush_secs=10)
        self._round = r

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer, self._round = None, None

    # -- writing ---------------------------------------------------------------
    def step(self, r: int, kind: str, global_step: int, loss: float, lr: float) -> None:
        if self._round != r:
            self._open(r)
        loss_tag, lr_tag = step_tags(kind)
        self._writer.add_scalar(loss_tag, loss, global_step)
        self._writer.add_scalar(lr_tag, lr, global_step)

    def rebuild(self, r: int, rows: Sequence[Mapping[str, str]]) -> None:
        """Rewrite round ``r``'s file from its ``steps.csv`` rows; the writer stays open for more."""
        self._open(r)
        for row in rows:
            loss_tag, lr_tag = step_tags(row["kind"])
            step = int(row["global_step"])
            self._writer.add_scalar(loss_tag, float(row["loss"]), step)
            self._writer.add_scalar(lr_tag, float(row["lr"]), step)

    def round_end(self, entry: Mapping[str, Any], end_step: int, layers: Iterable[Mapping[str, Any]]) -> None:
        """Add the round's scalars at the global step where its ticket training ended, and close its file."""
        r = int(entry["round"])
        if self._round != r:  # nothing of this round was written by this process: it has no step rows
            self._open(r)
        for tag, value in round_scalars(entry, layers).items():
            self._writer.add_scalar(tag, value, end_step)
        self.close()
        self._mark(self._complete() | {r})

    def sync(
        self,
        history: Sequence[Mapping[str, Any]],
        rows: Sequence[Mapping[str, str]],
        offsets: Mapping[int, int],
        layers: Sequence[Mapping[str, Any]],
    ) -> None:
        """Bring the files in step with the CSV and the history at a run's (re)start."""
        done = {h["round"] for h in history}
        later = max(done, default=-1) + 1
        for path in self.dir.glob("events.out.tfevents.*.round*"):
            r = int(path.name.rsplit(".round", 1)[1])
            if r not in done and r != later:
                path.unlink(missing_ok=True)
        complete = self._complete() & done
        self._mark(complete)
        for entry in with_cost(history):
            r = entry["round"]
            if r in complete and self._files(r):
                continue
            self.rebuild(r, [row for row in rows if int(row["round"]) == r])
            self.round_end(entry, offsets[r + 1], layers)
        self.rebuild(later, [row for row in rows if int(row["round"]) == later])
