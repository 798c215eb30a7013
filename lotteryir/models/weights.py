"""Reading released weight files (foreign checkpoints) of any supported format and loading them strictly.

Formats, detected from the file's content rather than its name:
- safetensors;
- PyTorch Lightning `.ckpt` as released by MIR-L and PromptIR: weights under
  `state_dict`, keys prefixed `net.` (stripped only at the start of a key);
- BasicSR / Restormer: `{"params": ...}` or `{"params_ema": ...}`;
- a plain state dict saved with `torch.save`.
Pickled files are read with `torch.load(weights_only=True)`, so a file cannot run code.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from .registry import build_model, model_names, signature, sizes

LIGHTNING_PREFIX = "net."
WRAPPER_PREFIX = "module."  # (Distributed)DataParallel's
COUNTER = "num_batches_tracked"  # BatchNorm's step counter, absent from files saved before PyTorch 0.4.1
_SHOWN = 5  # offending keys named in an error message


class CheckpointError(ValueError):
    """A file that cannot be read as a checkpoint, or that matches no model."""


class CheckpointMismatchError(CheckpointError):
    """A state dict whose keys or shapes differ from the model's."""

    def __init__(
        self,
        message: str,
        missing: list[str],
        unexpected: list[str],
        wrong_shape: list[str],
        guess: tuple[str, str] | None,
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.wrong_shape = wrong_shape
        self.guess = guess


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """Read the weights of a checkpoint file: (state_dict, format).

    `format` is one of "safetensors", "lightning", "basicsr", "basicsr-ema", "plain".
    Weights still in torch.nn.utils.prune form (`w_orig`, `w_mask`) are folded to `w`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}" if not path.exists() else f"{path} is not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from e
    if _looks_like_safetensors(path):
        try:
            return _fold_pruning_reparam(load_file(str(path))), "safetensors"
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"{path}: corrupt safetensors file ({e})") from e
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on its way to refusing them
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        wanted = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if wanted:
            raise CheckpointError(
                f"{path}: refused to load: rebuilding it needs the Python object {wanted.group(1)}, and unpickling "
                "such a file can run arbitrary code, so nothing in it was executed. If you trust the file and its "
                "source, convert it once in a separate Python session: allow just that object with "
                "torch.serialization.add_safe_globals, read it with torch.load(path, weights_only=True), save its "
                "tensors with safetensors.torch.save_file, and pass the .safetensors file instead"
            ) from e
        raise CheckpointError(
            f"{path}: not a PyTorch or safetensors checkpoint ({_unpickler_reason(e)}); nothing in it was executed"
        ) from e
    except Exception as e:  # corrupt archives and random bytes: RuntimeError, EOFError, IndexError, KeyError, ...
        # torch's weights-only unpickler builds tensors and plain containers only, so whatever failed ran no code.
        raise CheckpointError(
            f"{path}: not a PyTorch or safetensors checkpoint ({type(e).__name__}: {e}); nothing in it was executed"
        ) from e
    state_dict, fmt = _unwrap(obj, path)
    return _fold_pruning_reparam(state_dict), fmt


def _unwrapped(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """``state_dict`` without the "module." of (Distributed)DataParallel when that is what keeps it from the model.

    Only then: a network may well have a child named ``module``.
    """
    expected = model.state_dict()
    if not state_dict or all(k in expected for k in state_dict):
        return state_dict
    if not all(k.startswith(WRAPPER_PREFIX) for k in state_dict):
        return state_dict
    stripped = {k[len(WRAPPER_PREFIX) :]: v for k, v in state_dict.items()}
    return stripped if all(k in expected for k in stripped) else state_dict


def _unpickler_reason(e: Exception) -> str:
    # torch's message is a page of advice (including unsafe loading); keep only what it found.
    found = re.search(r"Unsupported (operand|opcode|class|type)[^\n.]*", str(e))
    if found:
        return f"the safe unpickler met {found.group(0).strip().lower()}"
    return "the safe unpickler could not read it"


def _looks_like_safetensors(path: Path) -> bool:
    # safetensors: 8-byte little-endian header length, then a JSON object.
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 0 < n <= path.stat().st_size - 8


def _unwrap(obj: object, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict of weights, found {type(obj).__name__}")
    if isinstance(obj.get("state_dict"), Mapping):
        raw = {
            (k[len(LIGHTNING_PREFIX) :] if k.startswith(LIGHTNING_PREFIX) else k): v
            for k, v in obj["state_dict"].items()
        }
        state_dict, fmt = raw, "lightning"
    elif isinstance(obj.get("params"), Mapping):
        # Restormer's own test scripts load "params"; EMA weights only when that is all there is.
        state_dict, fmt = dict(obj["params"]), "basicsr"
    elif isinstance(obj.get("params_ema"), Mapping):
        state_dict, fmt = dict(obj["params_ema"]), "basicsr-ema"
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state_dict, fmt = dict(obj), "plain"
    else:
        keys = ", ".join(map(repr, list(obj)[:8]))
        raise CheckpointError(
            f"{path}: unrecognised checkpoint layout (top-level keys: {keys or 'none'}); expected a state "
            "dict, a Lightning checkpoint ('state_dict') or a BasicSR file ('params' / 'params_ema')"
        )
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: {fmt} weights hold non-tensor entries: {', '.join(bad[:_SHOWN])}")
    return state_dict, fmt


def _fold_pruning_reparam(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # A model saved while torch.nn.utils.prune hooks were attached stores w_orig and w_mask;
    # the pruned weight they stand for is their product (exact zeros where pruned).
    if not any(k.endswith("_orig") for k in state_dict):
        return state_dict
    out: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        if k.endswith("_mask") and k[: -len("_mask")] + "_orig" in state_dict:
            continue
        if k.endswith("_orig") and k[: -len("_orig")] + "_mask" in state_dict:
            base = k[: -len("_orig")]
            out[base] = v * state_dict[base + "_mask"].to(v.dtype)
        else:
            out[k] = v
    return out


def guess_model(state_dict: Mapping[str, torch.Tensor], name: str | None = None) -> tuple[str, str] | None:
    """The registered (name, size) whose keys and shapes best match `state_dict`.

    An exact match wins; otherwise the closest one, if at least half of the keys agree
    in name and shape; otherwise None. `name` restricts the search to one model.
    """
    target = {k: tuple(v.shape) for k, v in state_dict.items()}
    best, best_score = None, 0.5
    for n in [name] if name is not None else model_names():
        for s in sizes(n):
            sig = signature(n, s)
            if sig == target:
                return n, s
            agree = sum(1 for k, shape in target.items() if sig.get(k) == shape)
            score = agree / max(len(sig), len(target), 1)
            if score >= best_score:
                best, best_score = (n, s), score
    return best


def load_weights(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    model_name: str | None = None,
    size: str | None = None,
    source: str | None = None,
) -> None:
    """Load `state_dict` into `model` strictly (same keys, same shapes).

    On a mismatch raises CheckpointMismatchError naming the first offending keys and the
    registered model/size the weights probably belong to. `model_name`/`size` and
    `source` (usually the file) only make the message precise.
    """
    state_dict = _unwrapped(model, state_dict)
    check_weights(model, state_dict, model_name=model_name, size=size, source=source)
    # BatchNorm counters a file predates keep the model's own value (they only matter with momentum None).
    own = model.state_dict()
    filled = {**{k: own[k] for k in own if k.endswith(COUNTER) and k not in state_dict}, **state_dict}
    model.load_state_dict(filled, strict=True)


def check_weights(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    model_name: str | None = None,
    size: str | None = None,
    source: str | None = None,
) -> None:
    """Raise CheckpointMismatchError unless `state_dict` has the model's keys and shapes.

    Only shapes are read, so meta tensors work: a file can be checked before its data is loaded.
    """
    expected = model.state_dict()
    state_dict = _unwrapped(model, state_dict)
    missing = [k for k in expected if k not in state_dict and not k.endswith(COUNTER)]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} (file {tuple(state_dict[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        raise _mismatch(state_dict, missing, unexpected, wrong, model_name, size, source)


def _mismatch(
    state_dict: Mapping[str, torch.Tensor],
    missing: list[str],
    unexpected: list[str],
    wrong: list[str],
    model_name: str | None,
    size: str | None,
    source: str | None,
) -> CheckpointMismatchError:
    def listed(what: str, keys: list[str]) -> str:
        more = f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
        return f"{len(keys)} {what}: {', '.join(keys[:_SHOWN])}{more}"

    target = f"{model_name}/{size}" if model_name and size else model_name or "the model"
    parts = [
        listed(w, k)
        for w, k in (("missing keys", missing), ("unexpected keys", unexpected), ("keys with the wrong shape", wrong))
        if k
    ]
    guess = guess_model(state_dict)
    if guess is not None and guess != (model_name, size):
        hint = f"The weights look like {guess[0]}/{guess[1]}: build_model({guess[0]!r}, {guess[1]!r})."
    else:
        hint = "The weights match no registered model and size."
    prefix = f"{source}: " if source else ""
    message = f"{prefix}weights do not match {target}: " + "; ".join(parts) + ". " + hint
    return CheckpointMismatchError(message, missing, unexpected, wrong, guess)


def build_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    name: str | None = None,
    size: str | None = None,
    *,
    source: str | None = None,
    load: bool = True,
) -> tuple[nn.Module, str, str]:
    """Build the registered model the weights belong to and load them: (model, name, size).

    Without `name`/`size` the registry is searched for the model with these exact keys
    and shapes; given, they are checked strictly. With ``load=False`` the weights are only
    checked (shapes suffice, e.g. meta tensors) and the model keeps its initialization.
    """
    if name is None or size is None:
        guess = guess_model(state_dict, name)
        if guess is None:
            prefix = f"{source}: " if source else ""
            choices = ", ".join(f"{n}/{s}" for n in ([name] if name else model_names()) for s in sizes(n))
            raise CheckpointError(
                f"{prefix}the weights match no registered model (tried {choices}); "
                "pass the model's name and size, or register it first"
            )
        name, size = name or guess[0], size or guess[1]
    model = build_model(name, size)
    if load:
        load_weights(model, state_dict, model_name=name, size=size, source=source)
    else:
        check_weights(model, state_dict, model_name=name, size=size, source=source)
    return model, name, size
