"""Round records and the pruner's saved state: what each round produced, and the files a resume reads."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from .._files import atomic_save_safetensors, atomic_write_text
from .._finite import nonfinite, nonfinite_phrase
from .mask import Mask
from .rewind import RewindPoints, named_tensors

STATE_VERSION = 1
GROWABLE = ("rounds", "target_density", "rewind", "rewind_points")  # may differ when a saved run is continued
# The pruner's attributes that say how far it got, saved and restored under their own names.
PROGRESS = ("round", "level", "active", "excluded_unused", "extensions", "adopted_level")


def jsonable(value: Any) -> Any:
    """``value`` with tensors and numpy scalars turned into plain numbers and lists."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


@dataclass
class RoundRecord:
    """What one round produced (kept in ``pruner.history``)."""

    round: int
    density: float
    remaining: int
    total: int
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    rewind: str = ""  # where the survivors were rewound before this round trained ("" for round 0)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "round": self.round,
                "density": self.density,
                "remaining": self.remaining,
                "total": self.total,
                "metrics": self.metrics,
                "seconds": self.seconds,
                "controls": self.controls,
                "rewind": self.rewind,
            }
        )


class NonFiniteStateError(ValueError):
    """A saved pruner state whose weights (model or rewind point) hold NaN or infinity."""

    def __init__(self, path: Path, names: list[str]) -> None:
        self.path, self.names = path, names
        super().__init__(f"{nonfinite_phrase(path, names)}; weights like these cannot be pruned or trained on")


def _finite(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``path``, refused when any holds NaN or infinity (found here, not as a diverged loss)."""
    tensors = load_file(str(path))
    if bad := nonfinite(tensors):
        raise NonFiniteStateError(path, bad)
    return tensors


@dataclass
class Saved:
    """A pruner state read back: ``pruner.json``'s fields and the mask."""

    state: dict[str, Any]
    mask: Mask


def save_state(
    directory: str | os.PathLike,
    state: Mapping[str, Any],
    mask: Mask,
    rewinds: RewindPoints,
    model: nn.Module | None = None,
) -> None:
    """Write the mask, the rewind points, ``state`` (as ``pruner.json``) and the model's weights."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    mask.save(d / "mask.safetensors")
    if rewinds.snapshot is not None:
        atomic_save_safetensors(rewinds.snapshot, d / "rewind.safetensors")
    for step, weights in rewinds.kept.items():
        atomic_save_safetensors(weights, d / f"rewind_step{step}.safetensors")
    if model is not None:
        atomic_save_safetensors(model.state_dict(), d / "model.safetensors")
    points = {
        "rewind_step": rewinds.step,
        "has_rewind_point": rewinds.snapshot is not None,
        "kept_rewind_points": sorted(rewinds.kept),
    }
    text = json.dumps({"version": STATE_VERSION, **state, **points}, indent=2)
    atomic_write_text(d / "pruner.json", text)


def _check_config(d: Path, saved: Mapping[str, Any], mine: Mapping[str, Any], extensions: list, rewind: str) -> None:
    # A run may have grown (extend()): its length and rewind come from the state.
    diff = [k for k in mine if k not in GROWABLE and saved.get(k) != jsonable(mine[k])]
    if rewind not in [e["rewind"][0] for e in extensions] + [saved["rewind"]]:
        diff.append("rewind")
    if diff:
        details = "; ".join(f"{k}: saved {saved.get(k)!r}, now {mine[k]!r}" for k in diff[:4])
        raise ValueError(
            f"pruner state in {d} was made with a different configuration ({details}); "
            "to change the rewind of a saved run, load it as it was made and call extend(rewind=...)"
        )


def load_state(
    directory: str | os.PathLike,
    config: Mapping[str, Any],
    rewind: str,
    model: nn.Module,
    rewinds: RewindPoints,
) -> Saved:
    """Read what :func:`save_state` wrote, checked against the loading pruner's ``config`` and ``rewind``.

    The model's weights, when saved, are loaded into ``model``; the rewind points into ``rewinds``
    (the active snapshot on the model's device).
    """
    d = Path(directory)
    path = d / "pruner.json"
    if not path.is_file():
        raise FileNotFoundError(f"{d} holds no pruner state (missing {path.name})")
    state = json.loads(path.read_text())
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: unsupported pruner state version {state.get('version')!r}")
    state.setdefault("extensions", [])
    _check_config(d, state["config"], config, state["extensions"], rewind)
    if (d / "model.safetensors").is_file():
        weights = _finite(d / "model.safetensors")
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{d / 'model.safetensors'} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
    mask = Mask.load(d / "mask.safetensors")
    device = next(iter(named_tensors(model).values())).device
    if state["has_rewind_point"]:
        rewinds.snapshot = {k: v.to(device) for k, v in _finite(d / "rewind.safetensors").items()}
        rewinds.step = state["rewind_step"]
    for s in state.get("kept_rewind_points", []):
        rewinds.kept[int(s)] = _finite(d / f"rewind_step{s}.safetensors")
    return Saved(state, mask)
