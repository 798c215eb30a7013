"""A run's pruning method: its options checked when the configuration resolves, its object built from the run.

``--method-option KEY=VALUE`` sets a method's settings (see ``lotteryir.pruning.methods``); SNIP's
loss is built from a few batches of the run's own training data (``batches``, default
:data:`SNIP_BATCHES`), SynFlow's input from the recipe's channels and the run's patch size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..engine.batchnorm import training_batches
from ..engine.losses import LOSSES
from ..pruning.methods import METHODS, Method, get_method

SNIP_BATCHES = 4
# Settings a run adds to a method's own: how many training batches SNIP's loss averages over.
RUN_OPTIONS: dict[str, tuple[str, ...]] = {"snip": ("batches",)}
RUN_DEFAULTS: dict[str, Any] = {"batches": SNIP_BATCHES}
_FLOAT_OPTIONS = ("epsilon",)
SHUFFLED = ("snip", "synflow")  # the methods --shuffle-within-layers applies to


def check_method(method: str, options: Mapping[str, Any], shuffle: bool, controls: list[str]) -> dict[str, Any]:
    """The method's options typed and checked (errors name ``--method`` or ``--method-option``)."""
    if method not in METHODS:
        raise ValueError(f"--method: unknown pruning method {method!r}; available: {', '.join(METHODS)}")
    cls = METHODS[method]
    allowed = [k for k in cls.options if k != "shuffle"] + list(RUN_OPTIONS.get(method, ()))
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in allowed:
            takes = ", ".join(allowed) or "none"
            raise ValueError(f"--method-option: method {method!r} has no option {key!r} (its options: {takes})")
        if value is None:  # a stored configuration's "the method decides" (gmp's end, from the round)
            out[key] = None
            continue
        try:
            out[key] = float(value) if key in _FLOAT_OPTIONS else int(value)
        except (TypeError, ValueError):
            kind = "a number" if key in _FLOAT_OPTIONS else "an integer"
            raise ValueError(f"--method-option {key}={value!r}: {key} must be {kind}") from None
    if "batches" in out and out["batches"] < 1:
        raise ValueError(f"--method-option batches must be at least 1, got {out['batches']}")
    if shuffle and method not in SHUFFLED:
        raise ValueError(f"--shuffle-within-layers is the control of snip and synflow, not of --method {method}")
    if controls and cls.prunes_round0:
        raise ValueError(f"--controls follow a pruning round; --method {method} has none (use imp, oneshot ...)")
    _object(method, out, shuffle)  # the method's own checks (e.g. gmp's start < end)
    return out


def method_settings(method: str, options: Mapping[str, Any], shuffle: bool) -> dict[str, Any]:
    """Every setting of the method as it will run: the options given, then its defaults.

    (A default the method derives from the round, such as gmp's ``end``, stays None: the method decides it.)
    """
    obj = _object(method, options, shuffle)
    own = {k: getattr(obj, k) for k in METHODS[method].options if k != "shuffle"}
    run = {k: options.get(k, RUN_DEFAULTS[k]) for k in RUN_OPTIONS.get(method, ())}
    return {**own, **run}


def _object(method: str, options: Mapping[str, Any], shuffle: bool, **extra: Any) -> Method:
    own = {k: v for k, v in options.items() if k not in RUN_OPTIONS.get(method, ())}
    if method in SHUFFLED:
        own["shuffle"] = shuffle
    return get_method(method, **own, **extra)


def build_method(
    method: str,
    options: Mapping[str, Any],
    shuffle: bool,
    *,
    train_set: Any,
    channels: int,
    patch_size: int,
    batch_size: int,
    loss: str,
    seed: int,
    device: torch.device,
) -> Method:
    """The method object of a run: SNIP gets a loss on the run's data, SynFlow its input shape."""
    if method == "snip":
        batches = int(options.get("batches", SNIP_BATCHES))
        return _object(method, options, shuffle, loss_fn=_data_loss(train_set, batches, batch_size, loss, seed, device))
    if method == "synflow":
        return _object(method, options, shuffle, input_shape=(1, channels, patch_size, patch_size))
    return _object(method, options, shuffle)


def _data_loss(train_set: Any, batches: int, batch_size: int, loss: str, seed: int, device: torch.device) -> Any:
    """``loss_fn(model)``: the run's loss averaged over ``batches`` fixed batches of its training data."""

    def loss_fn(model: torch.nn.Module) -> torch.Tensor:
        total = torch.zeros((), device=device)
        for inputs, targets in training_batches(train_set, batches, batch_size, seed + 7, device):
            total = total + LOSSES[loss](model(inputs).float(), targets.float())
        return total / batches

    return loss_fn
