"""NaN and infinity in tensors: which ones hold them, said in one phrase (a bottom utility every layer may use).

Every loader of weights (a run's mid-round checkpoints, the pruner's state, masks, tickets) asks
this before using what it read, so damage is named where it is found, not later as a diverged loss.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch


def nonfinite(tensors: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` that hold NaN or infinity, in their order."""
    return [
        name
        for name, value in tensors.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def nonfinite_in_tree(value: Any, prefix: str = "") -> list[str]:
    """Like :func:`nonfinite` for nested dicts and lists (an optimizer's state); names are dotted paths."""
    if isinstance(value, torch.Tensor):
        return nonfinite({prefix: value})
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    return [n for k, v in items for n in nonfinite_in_tree(v, f"{prefix}.{k}" if prefix else str(k))]


def tensor_list(names: list[str]) -> str:
    """``"2 tensor(s) (a, b)"``: the first three names, then a count."""
    more = f", ... ({len(names)} in all)" if len(names) > 3 else ""
    return f"{len(names)} tensor(s) ({', '.join(names[:3])}{more})"


def nonfinite_phrase(path: str | os.PathLike, names: list[str]) -> str:
    """``"<path> holds NaN or infinite values in 2 tensor(s) (a, b)"``."""
    return f"{path} holds NaN or infinite values in {tensor_list(names)}"
