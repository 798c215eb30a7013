import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils import prune

from lotteryir.pruning import Mask, global_magnitude, layerwise_magnitude, random_mask_like, random_pruning


def _weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "a": torch.randn(16, 8, generator=g),
        "b": torch.randn(4, 3, 3, 3, generator=g) * 10,
        "c": torch.randn(50, generator=g),
    }


def test_global_threshold_is_global():
    w = _weights()
    m = global_magnitude(w, Mask.ones_like(w), 0.5)
    # "b" holds the large weights: a global threshold keeps more of it than of the others.
    d = m.densities()
    assert d["b"] > 0.9 and d["a"] < 0.5
    assert m.num_remaining == round(0.5 * m.num_total)
    kept_min = min(w[n].abs()[m[n]].min() for n in w)
    cut_max = max(w[n].abs()[~m[n]].max() for n in w if (~m[n]).any())
    assert kept_min >= cut_max


def test_layerwise_exact_per_tensor_counts():
    w = _weights()
    m = layerwise_magnitude(w, Mask.ones_like(w), 0.3)
    for n, t in w.items():
        assert int(m[n].sum()) == t.numel() - round(0.3 * t.numel())
    m2 = layerwise_magnitude(w, m, {"a": 0.5, "b": 0.1, "c": 0.0})
    assert int(m2["a"].sum()) == int(m["a"].sum()) - round(0.5 * int(m["a"].sum()))
    assert torch.equal(m2["c"], m["c"])
    assert not (m2["a"] & ~m["a"]).any()  # pruned entries never come back


def test_ties_broken_by_position():
    w = {"x": torch.ones(10), "y": torch.ones(10)}
    m = global_magnitude(w, Mask.ones_like(w), 0.25)  # remove 5 of 20 equal weights
    assert m["x"].tolist() == [False] * 5 + [True] * 5
    assert m["y"].all()
    assert global_magnitude(w, Mask.ones_like(w), 0.25) == m


def test_matches_torch_global_unstructured():
    w = _weights(3)
    mods = {n: torch.nn.Module() for n in w}
    for n, m in mods.items():
        m.weight = torch.nn.Parameter(w[n].clone())
    prune.global_unstructured([(m, "weight") for m in mods.values()], pruning_method=prune.L1Unstructured, amount=0.2)
    ours = global_magnitude(w, Mask.ones_like(w), 0.2)
    for n, m in mods.items():
        assert torch.equal(m.weight_mask.bool(), ours[n])


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=5),
    amount=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
    zeros=st.booleans(),
)
def test_global_removes_exactly_and_smallest(sizes, amount, seed, zeros):
    g = torch.Generator().manual_seed(seed)
    w = {f"t{i}": torch.randn(s, generator=g) for i, s in enumerate(sizes)}
    if zeros:  # many exact ties at zero
        for t in w.values():
            t[::2] = 0.0
    start = Mask({n: torch.rand(t.shape, generator=g) > 0.3 for n, t in w.items()})
    m = global_magnitude(w, start, amount)
    removed = start.num_remaining - m.num_remaining
    assert removed == round(amount * start.num_remaining)
    assert all(not (m[n] & ~start[n]).any() for n in w)
    kept = [w[n].abs()[m[n]] for n in w if m[n].any()]
    cut = [w[n].abs()[start[n] & ~m[n]] for n in w if (start[n] & ~m[n]).any()]
    if kept and cut:
        assert torch.cat(kept).min() >= torch.cat(cut).max()


def test_random_strategies_seeded_and_exact():
    w = _weights()
    ones = Mask.ones_like(w)
    a = random_pruning(w, ones, 0.4, seed=1)
    assert a == random_pruning(w, ones, 0.4, seed=1)
    assert a != random_pruning(w, ones, 0.4, seed=2)
    assert a.num_remaining == ones.num_total - round(0.4 * ones.num_total)
    ticket = global_magnitude(w, ones, 0.6)
    r = random_mask_like(ticket, seed=5)
    assert r.remaining() == ticket.remaining()
    assert r != ticket


def test_non_finite_weights_refused():
    w = {"a": torch.tensor([1.0, float("nan"), 2.0])}
    try:
        global_magnitude(w, Mask.ones_like(w), 0.3)
    except ValueError as e:
        assert "a contain(s) inf or nan" in str(e)
    else:
        raise AssertionError("expected ValueError")
