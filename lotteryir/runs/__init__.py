"""Pruning runs on disk: configuration, resumable rounds, history, figures, export."""

from .config import PAPER_PRESET, RunConfig
from .export import export_run, round_ticket_path
from .lock import RunLock, RunLockedError
from .outputs import check_output, check_output_dir, restore_targets
from .run import (
    PruningRun,
    RunCallbacks,
    RunError,
    RunPlan,
    is_run_dir,
    mean_scores,
    read_config,
    read_history,
    run_dir_containing,
)

__all__ = [
    "PAPER_PRESET",
    "PruningRun",
    "RunCallbacks",
    "RunConfig",
    "RunError",
    "RunLock",
    "RunLockedError",
    "RunPlan",
    "check_output",
    "check_output_dir",
    "export_run",
    "is_run_dir",
    "mean_scores",
    "read_config",
    "read_history",
    "restore_targets",
    "round_ticket_path",
    "run_dir_containing",
]
