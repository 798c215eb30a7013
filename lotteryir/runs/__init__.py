"""Pruning runs on disk: configuration, resumable rounds, history, figures, export."""

from .build import BuiltRun, build_run
from .config import PAPER_PRESET, RunConfig
from .cost import round_cost, run_cost, with_cost
from .errors import RunError
from .export import export_run, round_ticket_path
from .history import mean_scores, read_history
from .layout import RunLayout, is_run_dir, read_config, run_dir_containing
from .lock import RunLock, RunLockedError
from .outputs import check_output, check_output_dir, restore_targets
from .plan import RunCallbacks, RunPlan
from .resolved import ResolvedRunConfig, RoundLength
from .run import PruningRun

__all__ = [
    "PAPER_PRESET",
    "BuiltRun",
    "PruningRun",
    "RunCallbacks",
    "ResolvedRunConfig",
    "RoundLength",
    "RunConfig",
    "RunError",
    "RunLayout",
    "RunLock",
    "RunLockedError",
    "RunPlan",
    "build_run",
    "check_output",
    "check_output_dir",
    "export_run",
    "is_run_dir",
    "mean_scores",
    "read_config",
    "read_history",
    "restore_targets",
    "round_cost",
    "round_ticket_path",
    "run_cost",
    "run_dir_containing",
    "with_cost",
]
