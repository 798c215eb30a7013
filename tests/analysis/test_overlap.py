"""Mask overlap: intersection over union of kept weights, beside two random masks' at the same densities."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lotteryir.analysis import magnitude_mask_like, mask_overlap
from lotteryir.pruning import Mask


def _mask_at(shape: tuple[int, ...], density: float, seed: int) -> torch.Tensor:
    """A uniformly random mask keeping exactly round(density * n) entries."""
    n = int(torch.tensor(shape).prod())
    keep = round(density * n)
    flat = torch.zeros(n, dtype=torch.bool)
    flat[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:keep]] = True
    return flat.view(shape)


densities = st.floats(min_value=0.05, max_value=0.95)


@given(
    st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40), densities), min_size=1, max_size=4), st.integers(0, 99)
)
def test_identical_masks_overlap_fully(layers, seed):
    mask = Mask({f"l{i}.weight": _mask_at((a, b), d, seed + i) for i, (a, b, d) in enumerate(layers)})
    o = mask_overlap(mask, mask.clone())
    assert o.iou == 1.0
    assert all(layer.iou == 1.0 for layer in o.layers)
    assert o.random_iou <= 1.0


@settings(max_examples=25, deadline=None)
@given(densities, densities, st.integers(0, 10_000))
def test_random_masks_overlap_as_the_expectation_says(d1, d2, seed):
    shape = (200, 150)  # 30000 weights: the IoU of one draw is within a few hundredths of its expectation
    a = {"w": _mask_at(shape, d1, seed)}
    b = {"w": _mask_at(shape, d2, seed + 1)}
    o = mask_overlap(a, b)
    layer = o.layers[0]
    expected = (
        layer.density_a * layer.density_b / (layer.density_a + layer.density_b - layer.density_a * layer.density_b)
    )
    assert layer.random_iou == pytest.approx(expected)
    assert o.iou == pytest.approx(o.random_iou, abs=0.03)


def test_per_layer_and_overall_counts():
    a = {"x": torch.tensor([1, 1, 0, 0], dtype=torch.bool), "y": torch.tensor([1, 0], dtype=torch.bool)}
    b = {"x": torch.tensor([0, 1, 1, 0], dtype=torch.bool), "y": torch.tensor([0, 1], dtype=torch.bool)}
    o = mask_overlap(a, b)
    x, y = o.layers
    assert (x.intersection, x.union, x.iou) == (1, 3, pytest.approx(1 / 3))
    assert (y.intersection, y.union, y.iou) == (0, 2, 0.0)
    assert (o.intersection, o.union) == (1, 5)
    # Random at the densities: x: n=4, d=0.5, 0.5 -> E∩ = 1, E∪ = 3; y: n=2, d=0.5, 0.5 -> 0.5, 1.5.
    assert o.random_iou == pytest.approx((1 + 0.5) / (3 + 1.5))
    assert o.to_dict()["layers"]["x"]["iou"] == pytest.approx(1 / 3)


def test_masks_of_different_networks_are_refused_by_name():
    with pytest.raises(ValueError, match="only in the first: \\['a'\\]"):
        mask_overlap({"a": torch.ones(2, dtype=torch.bool)}, {"b": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="'a' has shape"):
        mask_overlap({"a": torch.ones(2, dtype=torch.bool)}, {"a": torch.ones(3, dtype=torch.bool)})


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30), densities), min_size=1, max_size=3), st.integers(0, 99)
)
def test_the_magnitude_mask_keeps_the_tickets_counts_and_the_largest_weights(layers, seed):
    g = torch.Generator().manual_seed(seed)
    mask = {f"l{i}.weight": _mask_at((a, b), d, seed + i) for i, (a, b, d) in enumerate(layers)}
    weights = {k: torch.randn(m.shape, generator=g) for k, m in mask.items()}
    ref = magnitude_mask_like(mask, weights)
    for k, m in mask.items():
        assert int(ref[k].sum()) == int(m.sum())
        kept, dropped = weights[k].abs()[ref[k]], weights[k].abs()[~ref[k]]
        if kept.numel() and dropped.numel():
            assert kept.min() >= dropped.max()


def test_the_magnitude_mask_of_the_masks_own_pattern_is_the_mask_and_a_misfit_is_named():
    mask = {"w": _mask_at((8, 8), 0.3, 1)}
    assert mask_overlap(mask, magnitude_mask_like(mask, {"w": mask["w"].float() * 2 + 0.1})).iou == 1.0
    assert mask_overlap(mask, magnitude_mask_like(mask, {"w": (~mask["w"]).float()})).iou == 0.0
    with pytest.raises(ValueError, match="shape"):
        magnitude_mask_like(mask, {"w": torch.ones(4, 16)})
    with pytest.raises(ValueError, match="lack"):
        magnitude_mask_like(mask, {"v": torch.ones(8, 8)})
