"""Where training and inference run."""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


def pick_device(preferred: torch.device | str | None = None) -> torch.device:
    """Return ``preferred`` if given, else CUDA when available, else CPU."""
    if preferred is not None:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device} was requested but CUDA is not available; use 'cpu' or leave it unset")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
