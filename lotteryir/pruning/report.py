"""Sparsity report: remaining/total, density and compression per tensor and overall."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .mask import Mask


@dataclass(frozen=True)
class TensorSparsity:
    name: str
    remaining: int
    total: int

    @property
    def density(self) -> float:
        return self.remaining / self.total if self.total else 1.0

    @property
    def compression(self) -> float:
        """total / remaining (inf when nothing survives)."""
        return self.total / self.remaining if self.remaining else float("inf")


@dataclass(frozen=True)
class SparsityReport:
    tensors: tuple[TensorSparsity, ...]

    @property
    def remaining(self) -> int:
        return sum(t.remaining for t in self.tensors)

    @property
    def total(self) -> int:
        return sum(t.total for t in self.tensors)

    @property
    def density(self) -> float:
        return self.remaining / self.total if self.total else 1.0

    @property
    def compression(self) -> float:
        return self.total / self.remaining if self.remaining else float("inf")

    def to_dict(self) -> dict:
        """JSON-ready: overall figures plus one entry per tensor."""
        return {
            "remaining": self.remaining,
            "total": self.total,
            "density": self.density,
            "compression": self.compression,
            "tensors": [{**asdict(t), "density": t.density, "compression": t.compression} for t in self.tensors],
        }

    def format(self, max_rows: int | None = None) -> str:
        """A plain-text table (callers decide whether and where to print it)."""
        rows = list(self.tensors)[: max_rows if max_rows is not None else len(self.tensors)]
        width = max([len("tensor")] + [len(t.name) for t in rows])
        lines = [f"{'tensor':<{width}}  {'remaining':>12}  {'total':>12}  {'density':>8}  {'compress':>9}"]
        for t in rows:
            lines.append(
                f"{t.name:<{width}}  {t.remaining:>12,}  {t.total:>12,}  {t.density:>8.4f}  {t.compression:>8.2f}x"
            )
        if len(rows) < len(self.tensors):
            lines.append(f"... {len(self.tensors) - len(rows)} more tensors")
        lines.append(
            f"{'TOTAL':<{width}}  {self.remaining:>12,}  {self.total:>12,}  {self.density:>8.4f}  "
            f"{self.compression:>8.2f}x"
        )
        return "\n".join(lines)


def sparsity_report(mask: Mask) -> SparsityReport:
    """Per-tensor and global remaining/total, density and compression factor of ``mask``."""
    return SparsityReport(tuple(TensorSparsity(n, int(torch.count_nonzero(m)), m.numel()) for n, m in mask.items()))
