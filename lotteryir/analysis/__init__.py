"""What a scientist asks of tickets: stability (linear mode connectivity) and how masks of two runs compare.

The arithmetic (:mod:`.barrier`, :mod:`.overlap`) and the generic :func:`instability` work on any
``nn.Module`` and training closure; :mod:`.run_stability` and :mod:`.compare` apply them to runs on disk.
"""

from .barrier import DEFAULT_THRESHOLD, MIN_POINTS, alphas, mean_curve, psnr_barrier, smallest_stable
from .compare import TransferResult, common_round, rewind_magnitude_overlap, run_overlap, transfer_ticket
from .overlap import LayerOverlap, MaskOverlap, magnitude_mask_like, mask_overlap
from .run_stability import StabilityReport, load_report, resolve_auto_rewind, run_stability, states_at_steps
from .stability import PathResult, instability, write_interpolation

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_POINTS",
    "LayerOverlap",
    "MaskOverlap",
    "PathResult",
    "StabilityReport",
    "TransferResult",
    "alphas",
    "common_round",
    "instability",
    "load_report",
    "magnitude_mask_like",
    "mask_overlap",
    "mean_curve",
    "psnr_barrier",
    "resolve_auto_rewind",
    "rewind_magnitude_overlap",
    "run_overlap",
    "run_stability",
    "smallest_stable",
    "states_at_steps",
    "transfer_ticket",
    "write_interpolation",
]
