"""Reference restorers (MIR-L = PromptIR architecture, Restormer), their registry, checkpoint import.

This package knows nothing about pruning: a network is a network.
"""

from __future__ import annotations

from .init import INITS, apply_init
from .padding import pad_to_multiple
from .promptir import PromptGenBlock, PromptIR, PromptIRConfig
from .registry import (
    ModelInfo,
    UnregisteredModelError,
    available,
    build_model,
    model_names,
    refuse_from_file,
    register_import_path,
    register_model,
    sizes,
)
from .restormer import Restormer, RestormerConfig
from .weights import (
    CheckpointError,
    CheckpointMismatchError,
    build_from_state_dict,
    check_weights,
    guess_model,
    load_weights,
    read_checkpoint,
)

__all__ = [
    "INITS",
    "CheckpointError",
    "CheckpointMismatchError",
    "ModelInfo",
    "PromptGenBlock",
    "PromptIR",
    "PromptIRConfig",
    "Restormer",
    "RestormerConfig",
    "UnregisteredModelError",
    "apply_init",
    "available",
    "build_from_state_dict",
    "build_model",
    "check_weights",
    "guess_model",
    "load_weights",
    "model_names",
    "pad_to_multiple",
    "read_checkpoint",
    "refuse_from_file",
    "register_import_path",
    "register_model",
    "sizes",
]
