"""Pruning strategies: pure functions ``(weights, mask, amount) -> Mask``.

``amount`` is the fraction of the *remaining* entries to remove; the number
removed is exactly ``round(amount * remaining)``. Ties are broken
deterministically: among equal scores, the entry that comes first (tensors in
mask order, entries in row-major order) is removed first.

Selection is an exact radix select on the IEEE-754 bit patterns of the scores
(for non-negative floats the int32 view is monotonic), two 16-bit histogram
passes instead of a sort: this is what makes a global round over 33M weights
take a fraction of a second on two CPU cores.
"""
from __future__ import annotations

import sys
from typing import Callable, Mapping

import torch

from .mask import Mask

Strategy = Callable[..., Mask]
_SENTINEL = 0x7FFFFFFF  # larger than the key of any finite float: marks already-pruned entries
_HIGH_HALF = 1 if sys.byteorder == "little" else 0  # index of an int32's high int16 half


def _check_inputs(weights: Mapping[str, torch.Tensor], mask: Mask) -> None:
    for name, m in mask.items():
        if name not in weights:
            raise KeyError(f"mask names {name!r} but no such weight was given")
        if tuple(weights[name].shape) != tuple(m.shape):
            raise ValueError(f"{name}: weight shape {tuple(weights[name].shape)} != mask shape {tuple(m.shape)}")


def _n_remove(amount: float, remaining: int) -> int:
    if not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"amount must be a fraction of the remaining weights in [0, 1], got {amount}")
    return int(round(float(amount) * remaining))


def _count(m: torch.Tensor) -> int:
    # count_nonzero is an order of magnitude faster than bool.sum() on CPU.
    return int(torch.count_nonzero(m))


def _magnitude_keys(w: torch.Tensor, m: torch.Tensor, alive: int) -> torch.Tensor:
    """Order-preserving int32 keys of |w|, pruned entries set to the sentinel."""
    key = w.detach().to(torch.float32).contiguous().view(torch.int32) & 0x7FFFFFFF
    if alive < m.numel():
        key.masked_fill_(~m, _SENTINEL)
    return key


def _remove_smallest(
    keys: Mapping[str, torch.Tensor], alive: Mask, n_remove: int, counts: Mapping[str, int] | None = None
) -> Mask:
    """Keep all but the ``n_remove`` smallest keys among the ``alive`` entries.

    Pruned entries carry the sentinel key. Two histogram passes find the exact
    k-th smallest key and how many keys lie below it and on it; only when some,
    but not all, keys equal to the threshold must go is a tie-break pass needed.
    """
    names = list(keys)
    flat = [keys[n].flatten() for n in names]
    n_alive = sum(counts[n] for n in names) if counts is not None else sum(_count(alive[n]) for n in names)
    n_dead = sum(t.numel() for t in flat) - n_alive
    if n_remove <= 0:
        return Mask({n: alive[n].clone() for n in names})
    if n_remove > n_alive:
        raise ValueError(f"cannot remove {n_remove} entries: only {n_alive} remain")
    # The high 16 bits as a strided int16 view: no shifted copy of 33M keys is materialized.
    highs = [t.view(torch.int16)[_HIGH_HALF::2] for t in flat]
    hi_hist = sum(torch.bincount(h, minlength=1 << 15).cpu() for h in highs)
    # Keys of inf/nan have all exponent bits set; only the n_dead sentinels may live there.
    if int(hi_hist[0x7F80:].sum()) > n_dead:
        bad = [n for n, t in zip(names, flat) if bool(((t >= 0x7F800000) & alive[n].flatten()).any())]
        raise ValueError(f"{', '.join(bad[:5])} contain(s) inf or nan; refusing to prune on non-finite magnitudes")
    cum = torch.cumsum(hi_hist, 0)
    hi = int(torch.searchsorted(cum, torch.tensor(n_remove, dtype=cum.dtype)))
    below_hi = int(cum[hi - 1]) if hi > 0 else 0
    lo_hist = torch.zeros(1 << 16, dtype=torch.int64)
    for t, h in zip(flat, highs):
        sel = t[h == hi]
        if sel.numel():
            lo_hist += torch.bincount(sel & 0xFFFF, minlength=1 << 16).cpu()
    del highs
    lo_cum = torch.cumsum(lo_hist, 0)
    lo = int(torch.searchsorted(lo_cum, torch.tensor(n_remove - below_hi, dtype=lo_cum.dtype)))
    threshold = (hi << 16) | lo
    n_below = below_hi + (int(lo_cum[lo - 1]) if lo > 0 else 0)
    n_equal = int(lo_hist[lo])
    ties_to_remove = n_remove - n_below  # 1 <= ties_to_remove <= n_equal
    out: dict[str, torch.Tensor] = {}
    for name, t in zip(names, flat):
        keep = t > threshold
        if counts is None or counts[name] < t.numel():  # sentinels sit above any threshold
            keep &= alive[name].flatten()
        if 0 < ties_to_remove < n_equal:
            # Deterministic tie-break: the first ties in (tensor, row-major) order go.
            ties = torch.nonzero(t == threshold).flatten()
            keep[ties[ties_to_remove:]] = True
            ties_to_remove -= min(ties_to_remove, ties.numel())
        elif ties_to_remove == 0:
            keep |= t == threshold
        out[name] = keep.view(keys[name].shape)
    return Mask(out)


def global_magnitude(weights: Mapping[str, torch.Tensor], mask: Mask, amount: float) -> Mask:
    """Remove the ``amount`` fraction of surviving entries with the smallest |w| across all tensors."""
    _check_inputs(weights, mask)
    counts = {n: _count(m) for n, m in mask.items()}
    keys = {n: _magnitude_keys(weights[n], mask[n], counts[n]) for n in mask}
    return _remove_smallest(keys, mask, _n_remove(amount, sum(counts.values())), counts)


def layerwise_magnitude(
    weights: Mapping[str, torch.Tensor], mask: Mask, amount: float | Mapping[str, float]
) -> Mask:
    """Remove the ``amount`` fraction of each tensor's survivors, smallest |w| first.

    ``amount`` may be a mapping name -> fraction for per-tensor rates.
    """
    _check_inputs(weights, mask)
    out: dict[str, torch.Tensor] = {}
    for n, m in mask.items():
        a = amount[n] if isinstance(amount, Mapping) else amount
        alive = _count(m)
        key = _magnitude_keys(weights[n], m, alive)
        out[n] = _remove_smallest({n: key}, Mask({n: m}), _n_remove(a, alive), {n: alive})[n]
    return Mask(out)


def _random_keys(m: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Below the bit pattern of +inf, so random keys never look like non-finite weights.
    key = torch.randint(0, 0x7F800000, m.shape, generator=generator, dtype=torch.int32)
    return key.to(m.device).masked_fill_(~m, _SENTINEL)


def random_pruning(
    weights: Mapping[str, torch.Tensor],
    mask: Mask,
    amount: float,
    *,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> Mask:
    """Remove the ``amount`` fraction of survivors uniformly at random across all tensors (a control)."""
    _check_inputs(weights, mask)
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    keys = {n: _random_keys(m, g) for n, m in mask.items()}
    return _remove_smallest(keys, mask, _n_remove(amount, mask.num_remaining))


def random_mask_like(mask: Mask, *, seed: int = 0, generator: torch.Generator | None = None) -> Mask:
    """A random mask with exactly the same number of survivors as ``mask`` in every tensor."""
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    out = {}
    for n, m in mask.items():
        full = torch.ones_like(m, dtype=torch.bool)
        n_remove = m.numel() - _count(m)
        out[n] = _remove_smallest({n: _random_keys(full, g)}, Mask({n: full}), n_remove)[n]
    return Mask(out)


STRATEGIES: dict[str, Strategy] = {
    "global": global_magnitude,
    "layerwise": layerwise_magnitude,
    "random": random_pruning,
}
