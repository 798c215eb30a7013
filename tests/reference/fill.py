"""lotteryir's deterministic weight fill for the architecture-equivalence tests.

The reference outputs in this folder were produced by the published PromptIR and
Restormer code with every floating state-dict tensor set by the rule below, which
depends only on a tensor's name and shape. Filling our networks the same way and
comparing outputs therefore tests that they compute the same function.
"""

from __future__ import annotations

import zlib

import torch


def fill_value(name: str, shape: torch.Size) -> torch.Tensor:
    """The float64 values the rule assigns to tensor ``name`` of ``shape``."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    u = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1  # [-1, 1)
    if "prompt_param" in name:  # prompts are initialised in [0, 1)
        return (u + 1) / 2
    if name.endswith("temperature"):
        return 1 + 0.1 * u
    if len(shape) >= 2:  # conv / linear kernels, scaled by fan-in so activations stay O(1)
        return u / max(1, u.numel() // shape[0]) ** 0.5
    if name.endswith("weight"):  # LayerNorm / PReLU scales near 1
        return 1 + 0.1 * u
    return 0.1 * u  # biases


@torch.no_grad()
def deterministic_fill(model: torch.nn.Module) -> None:
    """Overwrite every floating tensor of ``model.state_dict()`` by :func:`fill_value`."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            tensor.copy_(fill_value(name, tensor.shape).to(tensor.dtype))
