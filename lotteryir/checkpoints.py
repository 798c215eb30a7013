"""Loading a released checkpoint as a ready model plus the mask its zeros encode.

This sits above both `models` (which reads and loads weights) and `pruning` (which
knows masks), so neither has to know the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ._finite import nonfinite, nonfinite_phrase
from ._version import __version__
from .models import CheckpointError, build_from_state_dict, check_weights, guess_model, load_weights, read_checkpoint
from .models.registry import refuse_from_file
from .pruning import (
    Mask,
    SparsityReport,
    current_mask,
    export_state_dict,
    find_prunable,
    select_prunable,
    sparsity_report,
)
from .pruning.ticket import compact_shapes, is_compact, load_compact, read_compact_metadata, save_compact


class NonFiniteWeightsError(CheckpointError):
    """A checkpoint whose weights hold NaN or infinity (it would restore to garbage)."""


@dataclass
class LoadedCheckpoint:
    """A model with a checkpoint's weights, what it is, and its sparsity."""

    model: nn.Module
    name: str
    size: str
    fmt: str  # "ticket", "safetensors", "lightning", "basicsr", "basicsr-ema" or "plain"
    mask: Mask  # over the model's prunable weights; a dense file gives density 1.0
    report: SparsityReport
    path: Path


def load_checkpoint(
    path: str | os.PathLike,
    name: str | None = None,
    size: str | None = None,
    device: str | torch.device = "cpu",
    *,
    allow_nonfinite: bool = False,
    allow_unchecked: bool = False,
) -> LoadedCheckpoint:
    """Read a checkpoint, build the registered model it belongs to, load it strictly.

    `name` and `size` are found from the file's keys and shapes when not given. A
    released MIR-L checkpoint stores pruned weights as exact zeros, so the returned
    mask is that ticket's mask. Weights holding NaN or infinity raise
    NonFiniteWeightsError unless ``allow_nonfinite``. A ticket of format version 1 (no
    checksums) loads only with ``allow_unchecked``.
    """
    path = Path(path)
    if path.is_file() and is_compact(path):
        return load_ticket(path, name, size, device, allow_nonfinite=allow_nonfinite, allow_unchecked=allow_unchecked)
    state_dict, fmt = read_checkpoint(path)
    if not allow_nonfinite:
        check_finite(state_dict, path)
    model, name, size = build_from_state_dict(state_dict, name, size, source=str(path))
    # From the loaded model, not the file: the keys are the model's own after unwrapping.
    mask = Mask.from_zeros(model.state_dict(), names=select_prunable(model))
    return LoadedCheckpoint(model.to(device), name, size, fmt, mask, sparsity_report(mask), path)


def save_ticket(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    dtype: str = "fp32",
    name: str | None = None,
    size: str | None = None,
    overwrite: bool = True,
    **metadata: object,
) -> Mask:
    """Write ``model`` as a compact ticket (entropy-coded mask + surviving values); returns the mask.

    Works on a model with masks attached (torch.nn.utils.prune form) and on a
    plain model whose pruned weights are exact zeros. ``name``/``size`` (found
    from the weights when the model is registered) go into the metadata so
    :func:`load_ticket` can rebuild the network. Without ``overwrite`` an existing ``path`` is never
    replaced (it is a write option, never a metadata key).
    """
    state = export_state_dict(model)
    attached = [p for p in find_prunable(model) if hasattr(p.module, p.attr + "_mask")]
    if attached:
        mask = current_mask(attached)
    else:
        mask = Mask.from_zeros(state, names=select_prunable(model))
    if name is None or size is None:
        guess = guess_model(state, name)
        if guess is not None:
            name, size = name or guess[0], size or guess[1]
    write_ticket(state, mask, path, model=name, size=size, dtype=dtype, overwrite=overwrite, **metadata)
    return mask


# Keys the ticket writer owns: the format's own, and what it derives from the mask and the version.
_DERIVED = ("format", "version", "pruned", "order", "crc32", "density", "value_dtype", "lotteryir_version")


def ticket_metadata(mask: Mask, *, model: str | None, size: str | None, dtype: str = "fp32", **extra: object) -> dict:
    """The metadata every ticket carries: the network, its density, how values are stored, the version.

    ``extra`` adds keys (a run's round and source directory); keys the writer derives (density,
    value_dtype, the version and the format's own) are recomputed, never copied from ``extra``.
    """
    base: dict[str, object] = {"model": model, "size": size, "density": mask.density}
    kept = {k: v for k, v in extra.items() if k not in _DERIVED and k not in base}
    return {**base, **kept, "value_dtype": dtype, "lotteryir_version": __version__}


def write_ticket(
    state: dict[str, torch.Tensor],
    mask: Mask,
    path: str | os.PathLike,
    *,
    model: str | None,
    size: str | None,
    dtype: str = "fp32",
    overwrite: bool = True,
    **extra: object,
) -> dict:
    """THE ticket writer: ``state`` with ``mask``'s pruned entries coded compactly, and its metadata; returns it.

    Every ticket lotteryir writes comes from here (:func:`save_ticket`, a run's round files, ``export``).
    """
    meta = ticket_metadata(mask, model=model, size=size, dtype=dtype, **extra)
    save_compact(state, mask, path, dtype=dtype, metadata=meta, overwrite=overwrite)
    return meta


def read_ticket(
    path: str | os.PathLike,
    *,
    max_elements: int | None = None,
    max_bytes: int | None = None,
    allow_unchecked: bool = False,
) -> tuple[dict[str, torch.Tensor], Mask, dict]:
    """A compact ticket as (plain state dict with pruned entries as zeros, mask, metadata).

    With no model to check its shapes against, the ticket may make the reader allocate at most
    ``max_elements`` pruned weights and ``max_bytes`` bytes in all, checked before anything is
    allocated; by default both grow with the file's size up to a ceiling (268M weights, 2 GiB).
    A ticket of format version 1 (no checksums) loads only with ``allow_unchecked``.
    """
    return load_compact(path, max_elements=max_elements, max_bytes=max_bytes, allow_unchecked=allow_unchecked)


def load_ticket(
    path: str | os.PathLike,
    name: str | None = None,
    size: str | None = None,
    device: str | torch.device = "cpu",
    model: nn.Module | None = None,
    *,
    allow_nonfinite: bool = False,
    allow_unchecked: bool = False,
) -> LoadedCheckpoint:
    """Read a compact ticket into a model with the exact weights.

    With ``model`` (an instance of your own class) the weights load into it strictly;
    otherwise the registered model named in the ticket (or by ``name``/``size``) is built.
    The ticket's declared shapes are checked against the model before its data is read.
    A ticket of a model named by import path (``package.module:factory``) needs
    ``name`` (or ``model``): code named inside a file is never imported. A ticket of format
    version 1 (no checksums) loads only with ``allow_unchecked``.
    """
    path = Path(path)
    header = read_compact_metadata(path, allow_unchecked=allow_unchecked)
    if name is None and model is None:
        refuse_from_file(header.get("model"), str(path))  # an import path inside a file is never imported
    name, size = name or header.get("model"), size or header.get("size")
    # Shapes only (meta tensors): a hostile header is caught before anything is allocated.
    declared = {
        k: torch.empty(s, device="meta") for k, s in compact_shapes(path, allow_unchecked=allow_unchecked).items()
    }
    if model is not None:
        check_weights(model, declared, model_name=name, size=size, source=str(path))
        name, size = name or type(model).__name__, size or ""
    else:
        model, name, size = build_from_state_dict(declared, name, size, source=str(path), load=False)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state, mask, header = load_compact(path, expected_shapes=expected, allow_unchecked=allow_unchecked)
    if not allow_nonfinite:
        check_finite(state, path)
    load_weights(model, state, model_name=name, size=size, source=str(path))
    return LoadedCheckpoint(model.to(device), name, size, "ticket", mask, sparsity_report(mask), path)


def load_weights_file(model: nn.Module, path: str | os.PathLike, *, allow_nonfinite: bool = False) -> str:
    """Load a weight file of any format ``load_checkpoint`` reads strictly into ``model``; returns the format.

    For a network you built yourself (``lotteryir prune --from``): keys and shapes must be the
    model's; a mismatch names the first offending keys, NaN or infinity is refused unless ``allow_nonfinite``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such weights file: {path}")
    if is_compact(path):
        load_ticket(path, model=model, allow_nonfinite=allow_nonfinite)
        return "ticket"
    state_dict, fmt = read_checkpoint(path)
    if not allow_nonfinite:
        check_finite(state_dict, path)
    load_weights(model, state_dict, source=str(path))
    return fmt


def check_finite(state_dict: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Raise NonFiniteWeightsError naming the tensors of ``state_dict`` that hold NaN or infinity."""
    if bad := nonfinite(state_dict):
        raise NonFiniteWeightsError(
            f"{nonfinite_phrase(source, bad)}; they would restore to garbage. To use the file anyway pass "
            "--allow-nonfinite (allow_nonfinite=True in Python)"
        )
