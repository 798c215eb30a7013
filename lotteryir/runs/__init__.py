"""Pruning runs on disk: configuration, resumable rounds, history, figures, export.

Its names load on first use, so ``import lotteryir.runs`` (``prune --help`` reads ``runs.defaults``) loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
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

_SOURCES = {
    "BuiltRun": ".build",
    "build_run": ".build",
    "PAPER_PRESET": ".config",
    "RunConfig": ".config",
    "round_cost": ".cost",
    "run_cost": ".cost",
    "with_cost": ".cost",
    "RunError": ".errors",
    "export_run": ".export",
    "round_ticket_path": ".export",
    "mean_scores": ".history",
    "read_history": ".history",
    "RunLayout": ".layout",
    "is_run_dir": ".layout",
    "read_config": ".layout",
    "run_dir_containing": ".layout",
    "RunLock": ".lock",
    "RunLockedError": ".lock",
    "check_output": ".outputs",
    "check_output_dir": ".outputs",
    "restore_targets": ".outputs",
    "RunCallbacks": ".plan",
    "RunPlan": ".plan",
    "ResolvedRunConfig": ".resolved",
    "RoundLength": ".resolved",
    "PruningRun": ".run",
}

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

__getattr__ = lazy_getattr(__name__, _SOURCES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
