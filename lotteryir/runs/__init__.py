"""Pruning runs on disk: configuration, resumable rounds, history, figures, export."""
from .config import PAPER_PRESET, RunConfig
from .export import export_run, round_ticket_path
from .run import PruningRun, RunCallbacks, RunError, RunPlan, is_run_dir, mean_scores, read_config, read_history

__all__ = [
    "PAPER_PRESET",
    "PruningRun",
    "RunCallbacks",
    "RunConfig",
    "RunError",
    "RunPlan",
    "export_run",
    "is_run_dir",
    "mean_scores",
    "read_config",
    "read_history",
    "round_ticket_path",
]
