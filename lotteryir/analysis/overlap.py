"""How much two masks agree: intersection over union of the kept weights, beside two random masks' (pure torch)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LayerOverlap:
    """One tensor's overlap: the kept counts of each mask, their intersection and union, and the random baseline."""

    name: str
    numel: int
    kept_a: int
    kept_b: int
    intersection: int
    union: int

    @property
    def iou(self) -> float:
        """|A ∩ B| / |A ∪ B| of the kept weights (1 when both masks keep nothing: they agree)."""
        return self.intersection / self.union if self.union else 1.0

    @property
    def density_a(self) -> float:
        return self.kept_a / self.numel if self.numel else 0.0

    @property
    def density_b(self) -> float:
        return self.kept_b / self.numel if self.numel else 0.0

    @property
    def expected_intersection(self) -> float:
        """E|A ∩ B| = n d_a d_b for masks drawn independently and uniformly at these densities."""
        return self.numel * self.density_a * self.density_b

    @property
    def expected_union(self) -> float:
        """E|A ∪ B| = n (d_a + d_b - d_a d_b) for the same random masks."""
        return self.numel * (self.density_a + self.density_b - self.density_a * self.density_b)

    @property
    def random_iou(self) -> float:
        """The ratio of the expectations E|A ∩ B| / E|A ∪ B| (not E[IoU]; the two agree closely for large n)."""
        return expected_iou(self.expected_intersection, self.expected_union)


@dataclass(frozen=True)
class MaskOverlap:
    """Per-tensor overlaps of two masks and the overall one (counts summed over tensors before dividing)."""

    layers: tuple[LayerOverlap, ...]

    @property
    def intersection(self) -> int:
        return sum(layer.intersection for layer in self.layers)

    @property
    def union(self) -> int:
        return sum(layer.union for layer in self.layers)

    @property
    def iou(self) -> float:
        return self.intersection / self.union if self.union else 1.0

    @property
    def random_iou(self) -> float:
        """Ratio of expectations summed over tensors: each random mask keeps its tensor's density of each mask."""
        return expected_iou(
            sum(layer.expected_intersection for layer in self.layers),
            sum(layer.expected_union for layer in self.layers),
        )

    def to_dict(self) -> dict:
        """JSON-able: overall and per tensor."""
        return {
            "iou": self.iou,
            "random_iou": self.random_iou,
            "intersection": self.intersection,
            "union": self.union,
            "layers": {
                layer.name: {
                    "numel": layer.numel,
                    "density_a": layer.density_a,
                    "density_b": layer.density_b,
                    "iou": layer.iou,
                    "random_iou": layer.random_iou,
                }
                for layer in self.layers
            },
        }


def expected_iou(intersection: float, union: float) -> float:
    return intersection / union if union else 1.0


def mask_overlap(mask_a: Mapping[str, torch.Tensor], mask_b: Mapping[str, torch.Tensor]) -> MaskOverlap:
    """Intersection over union of the weights two masks keep, per tensor and overall.

    Both masks must name the same tensors with the same shapes (masks of the same network); a
    mismatch names the first tensors that differ.
    """
    names_a, names_b = set(mask_a), set(mask_b)
    if names_a != names_b:
        only_a, only_b = sorted(names_a - names_b)[:3], sorted(names_b - names_a)[:3]
        raise ValueError(
            f"the masks cover different tensors (only in the first: {only_a or 'none'}; only in the second: "
            f"{only_b or 'none'}); compare masks of the same network"
        )
    layers = []
    for name in sorted(names_a):
        a, b = mask_a[name].bool(), mask_b[name].bool()
        if a.shape != b.shape:
            shapes = f"{tuple(a.shape)} in one mask, {tuple(b.shape)} in the other"
            raise ValueError(f"mask tensor {name!r} has shape {shapes}")
        b = b.to(a.device)
        layers.append(
            LayerOverlap(
                name=name,
                numel=a.numel(),
                kept_a=int(a.sum()),
                kept_b=int(b.sum()),
                intersection=int((a & b).sum()),
                union=int((a | b).sum()),
            )
        )
    return MaskOverlap(tuple(layers))


def magnitude_mask_like(
    mask: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Per tensor of ``mask``, keep as many entries as it keeps, the largest ``|weights|`` ones.

    The reference for a ticket's overlap with another run from the same initialization: magnitude
    pruning of the rewind weights themselves at the ticket's own per-tensor counts. Two runs that share
    an init share much of their masks through it, whatever their tasks.
    """
    missing = sorted(set(mask) - set(weights))[:3]
    if missing:
        raise ValueError(f"the weights lack the masked tensors {missing}")
    out = {}
    for name in mask:
        m, w = mask[name], weights[name]
        if tuple(w.shape) != tuple(m.shape):
            raise ValueError(f"tensor {name!r} has shape {tuple(w.shape)} in the weights, {tuple(m.shape)} in the mask")
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        keep = int(m.bool().sum())
        if keep:
            flat[w.detach().abs().flatten().cpu().topk(keep).indices] = True
        out[name] = flat.view(m.shape)
    return out
