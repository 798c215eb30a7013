"""A network's input channels, found before anything heavy: how many channels its images must have.

The first ``Conv2d`` the forward pass calls takes the image, so its ``in_channels`` is the answer. That
convolution is found with a pre-hook that stops the pass as soon as it is reached (no full forward, any
trial input size), which is also right for networks whose first-registered module is not the first used.
A network whose first convolution does not see the image (FFDNet's pixel-unshuffled input with a noise
map) declares the count itself as an integer attribute ``in_channels``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class _Reached(Exception):
    """Raised by the pre-hook to stop the forward pass at the first convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.channels = channels


def input_channels(model: nn.Module, *, size: int = 32) -> int:
    """The channels ``model``'s images must have: its ``in_channels`` attribute, or its first convolution's.

    The forward pass is tried on a zero image of 3 and then of 1 channels (``size`` x ``size``), stopped at
    the first ``Conv2d`` it calls; a network whose pass fails before any convolution falls back to its first
    registered ``Conv2d``. Weights, buffers, training mode and the RNG are left as they were. Raises
    ValueError when the network has no ``Conv2d`` and declares no ``in_channels``.
    """
    declared = getattr(model, "in_channels", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and not isinstance(model, nn.Conv2d):
        return declared
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(
            f"cannot tell the input channels of {type(model).__name__} (it has no Conv2d): give it an integer "
            "attribute in_channels (1 for grayscale, 3 for RGB)"
        )

    def stop(module: nn.Module, _inputs: object) -> None:
        raise _Reached(module.in_channels)  # type: ignore[arg-type]  # a Conv2d's

    multiple = getattr(model, "multiple", 1)
    size = max(size, multiple if isinstance(multiple, int) else 1)  # a side the network's padding accepts
    hooks = [m.register_forward_pre_hook(stop) for m in convs]
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            for trial in (3, 1):
                try:
                    model(torch.zeros(1, trial, size, size, device=device))
                except _Reached as reached:
                    return reached.channels
                except Exception:  # noqa: BLE001 - a pass that fails before any conv: try the other count
                    continue
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return convs[0].in_channels


def image_channels(model: nn.Module, supported: Sequence[int], name: str = "the network") -> int:
    """:func:`input_channels` of ``model`` when images are read with that many channels, else one clear error.

    ``supported`` is what the data layer reads (1 for grayscale, 3 for RGB); the message names both counts.
    """
    channels = input_channels(model)
    if channels not in supported:
        choices = " or ".join(f"{c} ({'grayscale' if c == 1 else 'RGB'})" for c in supported)
        raise ValueError(
            f"{name} takes {channels}-channel images, but lotteryir reads images with {choices} channels; "
            "give the network 1 or 3 input channels (or an integer attribute in_channels saying which its images have)"
        )
    return channels
