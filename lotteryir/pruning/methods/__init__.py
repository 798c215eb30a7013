"""Pruning methods: how masks evolve over a run. Each is a :class:`Method` the pruner drives.

==============  ==========================================================  ===================
name            what it does                                                trainings
==============  ==========================================================  ===================
``imp``         prune ``rate`` of the survivors per round, rewind, retrain  rounds + 1
``lr-rewind``   imp keeping the trained weights, LR schedule replayed       rounds + 1
``oneshot``     train dense, prune to the target at once, rewind, retrain   2
``gmp``         one training; sparsity rises on Zhu & Gupta's cubic curve   1
``early-bird``  dense training until the mask settles; prune, retrain      1 + a fraction
``snip``        prune at init by |g * w| on a batch, train                  1
``synflow``     prune at init, data-free and iterative, train               1
==============  ==========================================================  ===================
"""

from __future__ import annotations

from typing import Any

from .at_init import Snip, SynFlow
from .base import Method
from .common import mask_at
from .early_bird import EarlyBird
from .gmp import GradualMagnitude, cubic_sparsity
from .imp import Imp, LrRewind, OneShot

METHODS: dict[str, type[Method]] = {
    m.name: m for m in (Imp, LrRewind, OneShot, GradualMagnitude, EarlyBird, Snip, SynFlow)
}
"""Method name -> class (its settings are the class's keyword arguments)."""


def get_method(name: str, **options: Any) -> Method:
    """The method called ``name`` with ``options`` (its keyword arguments); an unknown one is named."""
    if name not in METHODS:
        raise ValueError(f"unknown pruning method {name!r}; available: {', '.join(METHODS)}")
    cls = METHODS[name]
    unknown = [k for k in options if k not in cls.options and k not in ("loss_fn", "input_shape")]
    if unknown:
        takes = ", ".join(cls.options) or "no options"
        raise ValueError(f"method {name!r} has no option {', '.join(unknown)} (it takes {takes})")
    return cls(**options)


def resolve(method: str | Method | None) -> Method:
    """A method object from a name, an object, or None (``imp``)."""
    if method is None:
        return Imp()
    return get_method(method) if isinstance(method, str) else method


__all__ = [
    "METHODS",
    "EarlyBird",
    "GradualMagnitude",
    "Imp",
    "LrRewind",
    "Method",
    "OneShot",
    "Snip",
    "SynFlow",
    "cubic_sparsity",
    "get_method",
    "mask_at",
    "resolve",
]
