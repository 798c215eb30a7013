"""The model-agnostic core: masks, selection, strategies, the torch.nn.utils.prune bridge, IMP.

Imports torch and nothing else of lotteryir: it never learns what an image is.
"""

from .._files import atomic_save_safetensors, atomic_write, atomic_write_text
from .bridge import attach_masks as _attach_params
from .bridge import current_mask, effective_weights, export_state_dict, remove_masks, write_weights
from .checks import PruningWarning
from .context import RoundContext, StepReport, TrainClosure
from .controls import ReinitError, check_reinit, default_init, reinitialize
from .distributed import (
    MaskMismatchError,
    WeightMismatchError,
    ddp_ignore_masks,
    mask_checksum,
    verify_masks_agree,
    verify_weights_agree,
)
from .mask import Mask
from .pruner import IterativeMagnitudePruner
from .report import SparsityReport, TensorSparsity, sparsity_report
from .rewind import Rewind
from .schedule import MAX_ROUNDS, rounds_for_density
from .selection import DEFAULT_MODULE_TYPES, PrunableParam, find_prunable, select_prunable
from .state import RoundRecord
from .strategies import STRATEGIES, global_magnitude, layerwise_magnitude, random_mask_like, random_pruning


def attach_masks(model, mask=None, *, include=None, exclude=None, module_types=None) -> None:
    """Attach ``mask`` (or all-ones masks) to ``model``'s prunable tensors, in place.

    ``mask`` may cover the default prunable set or any subset of it.
    """
    params = find_prunable(model, include, exclude, module_types)
    if mask is not None:
        names = {p.name for p in params}
        extra = [n for n in mask if n not in names]
        if extra:
            raise ValueError(f"mask names tensors that are not prunable in the model: {', '.join(extra[:5])}")
        params = [p for p in params if p.name in mask]
    _attach_params(model, params, mask)


__all__ = [
    "DEFAULT_MODULE_TYPES",
    "MAX_ROUNDS",
    "IterativeMagnitudePruner",
    "Mask",
    "MaskMismatchError",
    "PrunableParam",
    "PruningWarning",
    "ReinitError",
    "Rewind",
    "RoundContext",
    "RoundRecord",
    "STRATEGIES",
    "SparsityReport",
    "StepReport",
    "TensorSparsity",
    "TrainClosure",
    "WeightMismatchError",
    "atomic_save_safetensors",
    "atomic_write",
    "atomic_write_text",
    "attach_masks",
    "check_reinit",
    "current_mask",
    "ddp_ignore_masks",
    "default_init",
    "effective_weights",
    "export_state_dict",
    "find_prunable",
    "global_magnitude",
    "layerwise_magnitude",
    "mask_checksum",
    "random_mask_like",
    "random_pruning",
    "reinitialize",
    "remove_masks",
    "rounds_for_density",
    "select_prunable",
    "sparsity_report",
    "verify_masks_agree",
    "verify_weights_agree",
    "write_weights",
]
