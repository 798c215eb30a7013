"""Resume state of a round in progress: written atomically, read back for bit-exact resume.

Layout inside the round's checkpoint directory::

    train_state.json               the commit record: step, loss so far, RNG states, file names
    train_model-<step>.safetensors model state_dict (masked layers keep ``*_orig`` and ``*_mask``)
    train_optim-<step>.pt          optimizer (and grad scaler) state, read with weights_only=True

Tensor files carry the step in their name and are written before the JSON that
names them is atomically replaced, so a crash at any moment leaves the previous
complete checkpoint readable.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lotteryir._files import atomic_write, unshared_cpu
from lotteryir._finite import nonfinite, nonfinite_in_tree, nonfinite_phrase
from lotteryir.engine import distributed as ddp
from lotteryir.engine.failures import DamagedCheckpointError

__all__ = ["TrainState", "save_resume_state", "load_resume_state", "resume_round", "capture_rng", "restore_rng"]

log = logging.getLogger(__name__)

STATE_FILE = "train_state.json"
_RNG_PREFIX = "__rng__."


@dataclass
class TrainState:
    """What a resumed round needs besides the tensors."""

    round: int
    step: int
    loss_sum: float
    loss_count: int
    seconds: float
    fingerprint: dict[str, Any]
    last_loss: float = 0.0
    # The pruner's bookkeeping for the round (RoundContext.state_dict()); None in older checkpoints.
    round_state: dict[str, Any] | None = field(default=None)


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Global RNG states: torch ones as tensors, Python and NumPy ones as JSON-able values."""
    tensors = {_RNG_PREFIX + "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"{_RNG_PREFIX}cuda{i}"] = state
    # The legacy global RandomState is always MT19937, so its state is the legacy tuple, not a dict.
    mt_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, gauss = mt_state
    version, internal, gauss_next = random.getstate()
    scalars = {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), gauss_next],
    }
    return tensors, scalars


def restore_rng(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(tensors[_RNG_PREFIX + "torch"])
    cuda = sorted(k for k in tensors if k.startswith(_RNG_PREFIX + "cuda"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    kind, keys, pos, has_gauss, gauss = scalars["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = scalars["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_resume_state(
    directory: Path,
    state: TrainState,
    model: torch.nn.Module,
    optim_state: dict[str, Any],
) -> None:
    """Write a complete checkpoint for ``state.step``, then drop the files of older ones."""
    directory.mkdir(parents=True, exist_ok=True)
    model_name = f"train_model-{state.step:08d}.safetensors"
    optim_name = f"train_optim-{state.step:08d}.pt"

    rng_tensors, rng_scalars = capture_rng()
    tensors = unshared_cpu(model.state_dict())
    tensors.update(rng_tensors)
    atomic_write(directory / model_name, lambda p: save_file(tensors, str(p)))
    atomic_write(directory / optim_name, lambda p: torch.save(optim_state, p))
    record = {
        "round": state.round,
        "step": state.step,
        "loss_sum": state.loss_sum,
        "loss_count": state.loss_count,
        "seconds": state.seconds,
        "last_loss": state.last_loss,
        "fingerprint": state.fingerprint,
        "round_state": state.round_state,
        "model_file": model_name,
        "optim_file": optim_name,
        "rng": rng_scalars,
    }
    atomic_write(directory / STATE_FILE, lambda p: p.write_text(json.dumps(record)))
    _fsync_dir(directory)
    for stale in list(directory.glob("train_model-*.safetensors")) + list(directory.glob("train_optim-*.pt")):
        if stale.name not in (model_name, optim_name):
            stale.unlink(missing_ok=True)


def load_resume_state(directory: Path, model: torch.nn.Module) -> tuple[TrainState, dict[str, Any]] | None:
    """Load the checkpoint in ``directory`` into ``model`` and the global RNGs.

    Returns the state and the optimizer state dict, or None when there is no
    checkpoint. Does not check that it belongs to this round: read
    :func:`peek_state` first. A missing or unreadable file, or NaN or infinity in the weights or the
    optimizer's state, raises :class:`DamagedCheckpointError` before anything is loaded.
    """
    record = peek_state(directory)
    if record is None:
        return None
    tensors, optim_state = _read_checkpoint(directory, record)
    rng = {k: v for k, v in tensors.items() if k.startswith(_RNG_PREFIX)}
    weights = {k: v for k, v in tensors.items() if not k.startswith(_RNG_PREFIX)}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise RuntimeError(
            f"checkpoint {directory / record['model_file']} does not fit this model (were the same masks attached?): "
            f"{err}"
        ) from err
    restore_rng(rng, record["rng"])
    state = TrainState(
        round=record["round"],
        step=record["step"],
        loss_sum=record["loss_sum"],
        loss_count=record["loss_count"],
        seconds=record["seconds"],
        fingerprint=record["fingerprint"],
        last_loss=record.get("last_loss", 0.0),
        round_state=record.get("round_state"),
    )
    return state, optim_state


def _read_checkpoint(directory: Path, record: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The model file's tensors and the optimizer's state, each checked whole before either is used."""
    model_path, optim_path = directory / record["model_file"], directory / record["optim_file"]
    round_ = record.get("round")

    def damaged(problem: str) -> DamagedCheckpointError:
        return DamagedCheckpointError(problem, directory, round_)

    for path in (model_path, optim_path):
        if not path.is_file():
            raise damaged(f"{path} is missing (train_state.json names it)")
    try:
        tensors = load_file(str(model_path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own types for a cut or garbled file
        raise damaged(f"{model_path} is unreadable ({err})") from err
    if bad := nonfinite({k: v for k, v in tensors.items() if not k.startswith(_RNG_PREFIX)}):
        raise damaged(nonfinite_phrase(model_path, bad))
    try:
        optim_state = torch.load(optim_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's own message is a page of advice to load it unsafely: name the file and the way out.
        raise ValueError(
            f"{optim_path} holds more than tensors and plain values, and optimizer files are read with "
            f"torch.load(weights_only=True), which refuses it; delete {directory} to restart the round"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:  # a cut or garbled zip archive
        raise damaged(f"{optim_path} is unreadable ({err})") from err
    if bad := nonfinite_in_tree(optim_state):
        raise damaged(nonfinite_phrase(optim_path, bad))
    return tensors, optim_state


def resume_round(
    directory: Path | None,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    fingerprint: dict[str, Any],
) -> TrainState | None:
    """Load this round's checkpoint into model, optimizer, scaler and RNGs; None when there is none to resume.

    A checkpoint of another round is ignored; one of this round written with a different
    ``fingerprint`` (steps, batch size, seed ...) is refused, since resuming it would not
    reproduce the uninterrupted run.
    """
    if directory is None:
        return None
    record = peek_state(directory)
    if record is None:
        return None
    if record["fingerprint"].get("round") != fingerprint["round"]:
        # A finished checkpoint of an earlier round sharing the directory: not ours to resume.
        log.info("ignoring checkpoint of round %s in %s", record["fingerprint"].get("round"), directory)
        return None
    changed = {
        k: (record["fingerprint"].get(k), v) for k, v in fingerprint.items() if record["fingerprint"].get(k) != v
    }
    if changed:
        detail = ", ".join(f"{k}: checkpoint {old!r}, now {new!r}" for k, (old, new) in changed.items())
        raise ValueError(
            f"the training checkpoint in {directory} was written with a different setup ({detail}); "
            "restore the original settings or delete the checkpoint to restart the round"
        )
    loaded = load_resume_state(directory, model)
    assert loaded is not None
    state, optim_state = loaded
    ranks = optim_state.get("rng_ranks") or []
    if 0 < ddp.rank() < len(ranks):
        restore_rng(*ranks[ddp.rank()])  # load_resume_state restored rank 0's generators
    optimizer.load_state_dict(optim_state["optimizer"])
    if scaler is not None and "scaler" in optim_state:
        scaler.load_state_dict(optim_state["scaler"])
    log.info("round %d: resuming from step %d in %s", state.round, state.step, directory)
    return state


def peek_state(directory: Path) -> dict[str, Any] | None:
    """The checkpoint's JSON record, or None when the directory holds no checkpoint."""
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedCheckpointError(f"{path} is unreadable ({err})", directory, None) from err


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk; not all platforms allow this.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
