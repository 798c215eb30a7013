"""The PSNR barrier of a path and the choice of the smallest stable rewind step, on synthetic curves."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lotteryir.analysis import alphas, mean_curve, psnr_barrier, smallest_stable

psnr = st.floats(min_value=5.0, max_value=50.0, allow_nan=False)
curves = st.lists(psnr, min_size=11, max_size=31)


@given(curves)
def test_the_barrier_is_the_largest_drop_below_the_endpoints_mean(curve):
    reference = (curve[0] + curve[-1]) / 2
    b = psnr_barrier(curve)
    assert b >= 0
    assert b == pytest.approx(max(0.0, max(reference - v for v in curve)))
    # Every point lies at most b below the endpoints' mean, and one lies exactly there (or none below).
    assert all(v >= reference - b - 1e-9 for v in curve)
    # The lower endpoint is itself below the mean by half the endpoints' gap.
    assert b >= abs(curve[0] - curve[-1]) / 2 - 1e-9


@given(psnr, st.floats(min_value=0.0, max_value=10.0), st.integers(min_value=1, max_value=9))
def test_a_dip_between_equal_endpoints_is_measured_exactly(level, depth, where):
    curve = [level] * 11
    curve[where] = level - depth
    assert psnr_barrier(curve) == pytest.approx(depth)


@given(curves, st.floats(min_value=-20, max_value=20))
def test_the_barrier_does_not_move_with_a_constant_shift(curve, shift):
    assert psnr_barrier([v + shift for v in curve]) == pytest.approx(psnr_barrier(curve), abs=1e-6)


def test_a_path_above_its_endpoints_has_no_barrier_and_nan_is_not_hidden():
    bump = [20.0, 20.5, 21.0, 21.2, 21.0, 20.5, 20.0, 20.0, 20.0, 20.0, 20.0]
    assert psnr_barrier(bump) == 0.0
    assert math.isnan(psnr_barrier([20.0, math.nan, 20.0]))
    with pytest.raises(ValueError, match="two endpoints"):
        psnr_barrier([20.0])


def test_the_path_has_at_least_eleven_points_from_zero_to_one():
    assert alphas(11) == pytest.approx([i / 10 for i in range(11)])
    assert alphas(21)[0] == 0.0 and alphas(21)[-1] == 1.0
    with pytest.raises(ValueError, match="at least 11"):
        alphas(10)


def test_the_mean_curve_is_the_mean_over_sets_at_each_point():
    assert mean_curve({"a": [10.0, 20.0], "b": [20.0, 40.0]}) == [15.0, 30.0]
    with pytest.raises(ValueError, match="every point"):
        mean_curve({"a": [1.0, 2.0], "b": [1.0]})


@given(
    st.dictionaries(st.integers(min_value=0, max_value=5000), st.floats(min_value=0, max_value=3), min_size=1),
    st.floats(min_value=0, max_value=3),
)
def test_the_smallest_stable_step_is_the_smallest_k_at_or_under_the_threshold(barriers, threshold):
    k = smallest_stable(barriers, threshold)
    stable = [kk for kk, b in barriers.items() if b <= threshold]
    if stable:
        assert k == min(stable)
        assert all(barriers[kk] > threshold for kk in barriers if kk < k)
    else:
        assert k is None


def test_nan_is_never_stable_and_the_threshold_is_checked():
    assert smallest_stable({0: math.nan, 20: 0.05}) == 20
    assert smallest_stable({0: 0.3, 20: 0.2}) is None
    assert smallest_stable({0: 0.3, 20: 0.2}, threshold=0.25) == 20
    with pytest.raises(ValueError, match="threshold"):
        smallest_stable({0: 0.0}, threshold=-1)
