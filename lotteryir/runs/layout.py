"""Where everything of a run lives on disk: every name of a run directory is spelled here, once.

Layout of a run directory::

    config.json            the resolved configuration, written before anything else
    lock                   held by the one process writing the run (PID inside)
    history.jsonl          one JSON line per finished round (rewritten atomically)
    pruner/                the pruner's state after the last finished round (pruner.old/ during a swap)
    rounds/rNN/            mask.safetensors, ticket.safetensors (compact weights),
                           metrics.json, samples.png; ckpt*/ while the round trains
    report.png             PSNR against remaining weights (the lottery-ticket figure)
    analysis/              stability.json and stability.png (``lotteryir stability``), written atomically
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import resolved_from_dict
from .errors import RunError
from .lock import LOCK_FILE
from .resolved import ResolvedRunConfig

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.jsonl"
REPORT_FILE = "report.png"
ROUNDS_DIR = "rounds"
PRUNER_DIR = "pruner"
PRUNER_OLD_DIR = "pruner.old"  # survives a crash between the two renames of a pruner swap
PRUNER_STATE_FILE = "pruner.json"
MASK_FILE = "mask.safetensors"
TICKET_FILE = "ticket.safetensors"
METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.png"
ANALYSIS_DIR = "analysis"
STABILITY_FILE = "stability.json"
STABILITY_FIGURE = "stability.png"
CHECKPOINT_PREFIX = "ckpt"  # ckpt/ for the ticket's training, ckpt-<control>/ for a control's


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory (pure path arithmetic: nothing is read or created)."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def history(self) -> Path:
        return self.root / HISTORY_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def pruner(self) -> Path:
        return self.root / PRUNER_DIR

    @property
    def pruner_old(self) -> Path:
        return self.root / PRUNER_OLD_DIR

    def pruner_state(self) -> Path | None:
        """The pruner directory holding a complete state (``pruner/``, else ``pruner.old/``), or None."""
        for d in (self.pruner, self.pruner_old):
            if (d / PRUNER_STATE_FILE).is_file():
                return d
        return None

    @property
    def rounds(self) -> Path:
        return self.root / ROUNDS_DIR

    def round(self, r: int) -> Path:
        return self.rounds / f"r{r:02d}"

    def mask(self, r: int) -> Path:
        return self.round(r) / MASK_FILE

    def ticket(self, r: int) -> Path:
        return self.round(r) / TICKET_FILE

    def metrics(self, r: int) -> Path:
        return self.round(r) / METRICS_FILE

    def samples(self, r: int) -> Path:
        return self.round(r) / SAMPLES_FILE

    def checkpoint(self, r: int, kind: str = "ticket") -> Path:
        """Where round ``r`` trains ``kind`` (the ticket or a control) keeps its mid-round checkpoints."""
        return self.round(r) / (CHECKPOINT_PREFIX if kind == "ticket" else f"{CHECKPOINT_PREFIX}-{kind}")

    def checkpoints(self, r: int) -> list[Path]:
        """Every checkpoint folder of round ``r`` (removed once the round is committed)."""
        return sorted(self.round(r).glob(f"{CHECKPOINT_PREFIX}*"))

    @property
    def analysis(self) -> Path:
        return self.root / ANALYSIS_DIR

    @property
    def stability(self) -> Path:
        """The stored instability analysis (what ``--rewind step:auto`` reads)."""
        return self.analysis / STABILITY_FILE

    @property
    def stability_figure(self) -> Path:
        return self.analysis / STABILITY_FIGURE

    def is_run(self) -> bool:
        return self.config.is_file()


def is_run_dir(path: str | os.PathLike) -> bool:
    return RunLayout(path).is_run()


def run_dir_containing(path: str | os.PathLike) -> Path | None:
    """The run directory that ``path`` is (or lies inside), else None; outputs must never go there.

    Other programs write config.json files too (a home folder may hold one), so only a config.json
    that reads as a lotteryir run configuration counts.
    """
    path = Path(path).expanduser().resolve()
    for candidate in (path, *path.parents):
        if is_run_dir(candidate) and _reads_as_run_config(RunLayout(candidate).config):
            return candidate
    return None


def _reads_as_run_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"model", "recipe", "rate", "rewind", "seed"} <= set(data)


def not_a_run(path: str | os.PathLike, otherwise: str) -> RunError:
    """The error for a directory without config.json: ``otherwise``, unless it holds a run's other files."""
    layout = RunLayout(path)
    if layout.pruner_state() is None and not layout.rounds.is_dir():
        return RunError(otherwise)
    return RunError(
        f"{layout.config} is missing, though {path} holds a run's rounds (rounds/, pruner/): a run cannot be "
        "resumed or read without its configuration; put config.json back from a backup, or start a new run "
        f"with a new --out ({path} is left as it is)"
    )


def committed_round(layout: RunLayout) -> int:
    """The last round the run has committed (its pruner state's round), -1 when none or unreadable."""
    state = layout.pruner_state()
    try:
        found = json.loads((state / PRUNER_STATE_FILE).read_text()).get("round") if state is not None else None
    except (OSError, ValueError, AttributeError):
        return -1
    return found if isinstance(found, int) else -1


def read_config(run_dir: str | os.PathLike) -> ResolvedRunConfig:
    """The saved configuration of a run directory (clear error if it is not one)."""
    path = RunLayout(run_dir).config
    if not path.is_file():
        raise not_a_run(run_dir, f"{run_dir} is not a lotteryir run directory (no {CONFIG_FILE})")
    try:
        return resolved_from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise RunError(f"{path} is not a valid run configuration: {e}") from e
