"""`Mask`: parameter name -> bool tensor, a saved and compared value."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

from .._files import atomic_save_safetensors
from .._finite import nonfinite, nonfinite_phrase

ORIG_SUFFIX = "_orig"
MASK_SUFFIX = "_mask"


class Mask(Mapping[str, torch.Tensor]):
    """Which entries of each named tensor survive (True) or are pruned (False).

    Keys are parameter names of the *unpruned* model (``"body.0.conv.weight"``).
    Equal masks (same names, same shapes, same values) compare equal.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor] | None = None):
        self._t: dict[str, torch.Tensor] = {}
        for name, value in (tensors or {}).items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"mask entry {name!r} is {type(value).__name__}, expected a torch.Tensor")
            self._t[name] = value.detach().to(torch.bool)

    # -- construction --------------------------------------------------------
    @classmethod
    def ones_like(cls, tensors: Mapping[str, torch.Tensor]) -> Mask:
        """A mask that keeps every entry of ``tensors``."""
        return cls({n: torch.ones(t.shape, dtype=torch.bool, device=t.device) for n, t in tensors.items()})

    @classmethod
    def from_zeros(cls, state_dict: Mapping[str, torch.Tensor], names: Iterable[str] | None = None) -> Mask:
        """Recover the mask of a checkpoint that stores pruned weights as exact zeros.

        ``names`` picks the tensors (``select_prunable(model)`` gives those a pruner
        with default settings prunes). Without it, only what the default selection
        prunes is looked at: ``weight`` tensors of 2 or more dimensions (conv and
        linear weights), so zero-initialised gains or offsets such as NAFNet's
        ``beta``/``gamma`` do not count as pruned. A state dict still in
        torch.nn.utils.prune form (``x_orig`` + ``x_mask``) yields its stored masks.
        """
        sd = dict(state_dict)
        if names is None:
            names = []
            for key, t in sd.items():
                if key.endswith(MASK_SUFFIX):
                    names.append(key[: -len(MASK_SUFFIX)])
                elif key.endswith(ORIG_SUFFIX) or not isinstance(t, torch.Tensor):
                    continue
                elif t.is_floating_point() and t.dim() >= 2 and key.rpartition(".")[2] == "weight":
                    names.append(key)
        out: dict[str, torch.Tensor] = {}
        for name in names:
            if name + MASK_SUFFIX in sd:
                out[name] = sd[name + MASK_SUFFIX] != 0
            elif name in sd:
                out[name] = sd[name] != 0
            else:
                raise KeyError(f"tensor {name!r} is not in the state dict (nor {name + MASK_SUFFIX!r})")
        return cls(out)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Mask:
        """Read a mask written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"mask file not found: {path}")
        tensors = load_file(str(path))
        if bad := nonfinite(tensors):  # a NaN would read as True: a pruned weight brought back
            raise ValueError(f"{nonfinite_phrase(path, bad)}; a mask holds only true and false, so the file is damaged")
        return cls(tensors)

    # -- Mapping -------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._t[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._t)

    def __len__(self) -> int:
        return len(self._t)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mask):
            return NotImplemented
        if self._t.keys() != other._t.keys():  # order does not matter: a mask is a mapping
            return False
        return all(
            self._t[n].shape == other._t[n].shape and torch.equal(self._t[n].cpu(), other._t[n].cpu()) for n in self._t
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-content value: equality, not identity

    def __repr__(self) -> str:
        return f"Mask({len(self)} tensors, density={self.density:.4f}, {self.num_remaining}/{self.num_total})"

    # -- counts --------------------------------------------------------------
    @property
    def num_total(self) -> int:
        """Entries across all tensors."""
        return sum(t.numel() for t in self._t.values())

    @property
    def num_remaining(self) -> int:
        """Surviving (True) entries across all tensors."""
        return sum(int(torch.count_nonzero(t)) for t in self._t.values())

    @property
    def density(self) -> float:
        """Fraction of entries that survive (1.0 for an empty mask)."""
        total = self.num_total
        return self.num_remaining / total if total else 1.0

    def remaining(self) -> dict[str, int]:
        """Surviving entries per tensor."""
        return {n: int(torch.count_nonzero(t)) for n, t in self._t.items()}

    def densities(self) -> dict[str, float]:
        """Density per tensor."""
        return {n: (int(torch.count_nonzero(t)) / t.numel() if t.numel() else 1.0) for n, t in self._t.items()}

    # -- conversions ---------------------------------------------------------
    def to(self, device: torch.device | str) -> Mask:
        return Mask({n: t.to(device) for n, t in self._t.items()})

    def clone(self) -> Mask:
        return Mask({n: t.clone() for n, t in self._t.items()})

    def to_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._t)

    def check_against(self, shapes: Mapping[str, torch.Size | tuple[int, ...]], what: str = "model") -> None:
        """Raise ValueError naming the first mismatching names/shapes against ``shapes``."""
        missing = [n for n in shapes if n not in self._t]
        extra = [n for n in self._t if n not in shapes]
        wrong = [
            f"{n}: mask {tuple(self._t[n].shape)} vs {what} {tuple(shapes[n])}"
            for n in self._t
            if n in shapes and tuple(self._t[n].shape) != tuple(shapes[n])
        ]
        problems = []
        if missing:
            problems.append(f"missing from mask: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        if extra:
            problems.append(f"not prunable in {what}: {', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""))
        if wrong:
            problems.append("shape mismatch: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
        if problems:
            raise ValueError(f"mask does not match the {what}: " + " | ".join(problems))

    def save(self, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
        """Write as safetensors (bool tensors), atomically."""
        atomic_save_safetensors(self._t, path, metadata)
