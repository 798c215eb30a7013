"""The model every deploy path starts from: a detached, plain copy of the user's network."""

from __future__ import annotations

import copy

from torch import nn

from ..pruning import find_prunable, remove_masks


def plain_copy(model: nn.Module) -> nn.Module:
    """A CPU float32 copy of ``model`` in eval mode with any pruning masks made permanent (exact zeros).

    The caller's model is left as it is (device, dtype, mode and masks).
    """
    plain = copy.deepcopy(model).cpu().float().eval()
    remove_masks(find_prunable(plain))
    return plain
