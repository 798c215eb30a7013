"""Pruning strategies: pure functions ``(weights, mask, amount) -> Mask``.

``amount`` is the fraction of the *remaining* entries to remove; the number
removed is exactly ``round(amount * remaining)``. Ties are broken
deterministically: among equal scores, the entry that comes first (tensors in
mask order, entries in row-major order) is removed first. Every strategy in
:data:`STRATEGIES` takes the same keywords (``pruned_are_zero``, ``remaining``,
``seed``), so the pruner calls any of them the same way.

Selection works on the IEEE-754 bit patterns of the scores (for non-negative
floats the int32 view is monotonic) and never sorts them all: a sorted sample
brackets the threshold, one pass counts the keys below the bracket and gathers
the few inside it (an exact radix select of two 16-bit histogram passes is the
fallback). Small tensors are processed as concatenated runs, so hundreds of
tensors cost a few dozen kernel calls per pass. This is what makes a global
round over 33M weights take a fraction of a second on one CPU core.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence

import torch

from .mask import Mask

Strategy = Callable[..., Mask]
_SENTINEL = 0x7FFFFFFF  # larger than the key of any finite float: marks already-pruned entries
_HIGH_HALF = 1 if sys.byteorder == "little" else 0  # index of an int32's high int16 half
_RUN = 1 << 17  # tensors smaller than this are concatenated into runs of at least this size
_SAMPLE = 1 << 19  # keys sampled to bracket the threshold (inputs of 8x this or more)


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


def _magnitude_key(w: torch.Tensor) -> torch.Tensor:
    """Order-preserving int32 keys of |w| (a new tensor)."""
    return w.detach().to(torch.float32).contiguous().view(torch.int32) & 0x7FFFFFFF


def _layout(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """[start, stop) ranges over the tensors: large ones alone, consecutive small ones together.

    Runs keep the tensors' order, so tie-breaking by position is unchanged.
    """
    runs: list[tuple[int, int]] = []
    start, size = 0, 0
    for i, n in enumerate(sizes):
        if n >= _RUN:
            if i > start:
                runs.append((start, i))
            runs.append((i, i + 1))
            start, size = i + 1, 0
            continue
        size += n
        if size >= _RUN:
            runs.append((start, i + 1))
            start, size = i + 1, 0
    if start < len(sizes):
        runs.append((start, len(sizes)))
    return runs


def _join(tensors: Sequence[torch.Tensor], runs: list[tuple[int, int]]) -> list[torch.Tensor]:
    """One flat tensor per run (a view for a run of one tensor)."""
    return [tensors[a].reshape(-1) if b - a == 1 else torch.cat([t.reshape(-1) for t in tensors[a:b]]) for a, b in runs]


def _joined_keys(weights: Sequence[torch.Tensor], runs: list[tuple[int, int]]) -> list[torch.Tensor]:
    """:func:`_magnitude_key` of each run, written straight into one flat tensor per run."""
    out = []
    for a, b in runs:
        if b - a == 1:
            out.append(_magnitude_key(weights[a]).reshape(-1))
            continue
        flat = torch.empty(sum(w.numel() for w in weights[a:b]), dtype=torch.int32, device=weights[a].device)
        at = 0
        for w in weights[a:b]:
            bits = w.detach().to(torch.float32).contiguous().view(torch.int32).reshape(-1)
            torch.bitwise_and(bits, 0x7FFFFFFF, out=flat[at : at + bits.numel()])
            at += bits.numel()
        out.append(flat)
    return out


def _split(flat: list[torch.Tensor], runs: list[tuple[int, int]], shapes: Sequence[torch.Size]) -> list[torch.Tensor]:
    """Undo :func:`_join`; pieces of joined runs are copied (a Mask must not share storage)."""
    out: list[torch.Tensor] = []
    for (a, b), f in zip(runs, flat):
        if b - a == 1:
            out.append(f.view(shapes[a]))
            continue
        sizes = [math.prod(shapes[i]) for i in range(a, b)]
        out.extend(piece.view(shapes[i]).clone() for i, piece in zip(range(a, b), f.split(sizes)))
    return out


def _kth_key(flat: list[torch.Tensor], k: int) -> tuple[int, int, int]:
    """The k-th smallest key (1-based) of ``flat``: (threshold, #keys below it, #keys equal to it)."""
    return _kth_key_bracketed(flat, k) or _kth_key_radix(flat, k)


def _kth_key_radix(flat: list[torch.Tensor], k: int) -> tuple[int, int, int]:
    """Two histogram passes: the high 16 bits of every key, then the low 16 bits of the
    keys in the bucket that holds the k-th."""
    # The high 16 bits as a strided int16 view: no shifted copy of the keys is materialized.
    highs = [t.view(torch.int16)[_HIGH_HALF::2] for t in flat]
    hi_hist = torch.stack([torch.bincount(h, minlength=1 << 15).cpu() for h in highs]).sum(0)
    cum = torch.cumsum(hi_hist, 0)
    hi = int(torch.searchsorted(cum, torch.tensor(k, dtype=cum.dtype)))
    below_hi = int(cum[hi - 1]) if hi > 0 else 0
    sel = torch.cat([t[h == hi] for t, h in zip(flat, highs)])
    lo_hist = torch.bincount(sel & 0xFFFF, minlength=1 << 16).cpu()
    lo_cum = torch.cumsum(lo_hist, 0)
    lo = int(torch.searchsorted(lo_cum, torch.tensor(k - below_hi, dtype=lo_cum.dtype)))
    n_below = below_hi + (int(lo_cum[lo - 1]) if lo > 0 else 0)
    return (hi << 16) | lo, n_below, int(lo_hist[lo])


def _kth_key_bracketed(flat: list[torch.Tensor], k: int) -> tuple[int, int, int] | None:
    """The k-th key from one pass: a sorted sample brackets it in (lo, hi], one pass counts
    the keys <= lo and gathers those in between, and the k-th is read off the few gathered.

    Exact whatever the sample; None (use the radix select) when the bracket misses
    or the input is too small for sampling to pay.
    """
    n = sum(t.numel() for t in flat)
    if n < 8 * _SAMPLE:
        return None
    stride = n // _SAMPLE
    ranked = torch.sort(torch.cat([t[::stride] for t in flat])).values
    s, q = ranked.numel(), k / n
    margin = 6.0 * math.sqrt(s * q * (1.0 - q)) + 16.0  # six standard deviations of the sample's rank
    lo_i, hi_i = int(q * s - margin), int(q * s + margin)
    lo = int(ranked[lo_i]) if lo_i >= 0 else -1  # keys are >= 0
    hi = int(ranked[hi_i]) if hi_i < s else _SENTINEL
    at_or_below, band = [], []
    for t in flat:
        above = t > lo
        at_or_below.append(t.numel() - torch.count_nonzero(above))
        band.append(t[above & (t <= hi)])
    c_lo = int(torch.stack(at_or_below).sum())
    between = torch.sort(torch.cat(band)).values
    r = k - c_lo
    if not 1 <= r <= between.numel():
        return None
    threshold = between[r - 1]
    first = int(torch.searchsorted(between, threshold, right=False))
    last = int(torch.searchsorted(between, threshold, right=True))
    return int(threshold), c_lo + first, last - first


def _keep_above(flat: list[torch.Tensor], threshold: int, ties_to_remove: int, n_equal: int) -> list[torch.Tensor]:
    """Entries above ``threshold`` survive; of those equal to it, the first ``ties_to_remove`` go."""
    out = []
    for t in flat:
        keep = t > threshold
        if 0 < ties_to_remove < n_equal:
            # Deterministic tie-break: the first ties in (tensor, row-major) order go.
            ties = torch.nonzero(t == threshold).flatten()
            keep[ties[ties_to_remove:]] = True
            ties_to_remove -= min(ties_to_remove, ties.numel())
        elif ties_to_remove == 0:
            keep |= t == threshold
        out.append(keep)
    return out


def _non_finite(flat: list[torch.Tensor]) -> torch.Tensor:
    """How many keys are inf/nan (all exponent bits set), as a tensor (no sync)."""
    return torch.stack([torch.count_nonzero(t >= 0x7F800000) for t in flat]).sum()


def _remove_smallest(
    keys: Mapping[str, torch.Tensor], alive: Mask, n_remove: int, counts: Mapping[str, int] | None = None
) -> Mask:
    """Keep all but the ``n_remove`` smallest keys among the ``alive`` entries.

    ``keys`` are the unmasked keys; pruned entries get the sentinel here, so they
    sit above any threshold, and are masked out again at the end.
    """
    names = list(keys)
    counts = counts if counts is not None else {n: _count(alive[n]) for n in names}
    n_alive = sum(counts[n] for n in names)
    if n_remove <= 0:
        return Mask({n: alive[n].clone() for n in names})
    if n_remove > n_alive:
        raise ValueError(f"cannot remove {n_remove} entries: only {n_alive} remain")
    shapes = [keys[n].shape for n in names]
    runs = _layout([keys[n].numel() for n in names])
    flat = _join([keys[n] for n in names], runs)
    partial = [any(counts[names[i]] < keys[names[i]].numel() for i in range(a, b)) for a, b in runs]
    alive_flat = [m if p else None for m, p in zip(_join([alive[n] for n in names], runs), partial)]
    for t, m in zip(flat, alive_flat):
        if m is not None:
            t.masked_fill_(~m, _SENTINEL)
    n_dead = sum(t.numel() for t in flat) - n_alive
    # Only the n_dead sentinels may sit in the inf/nan range.
    if int(_non_finite(flat)) > n_dead:
        bad = [n for n in names if bool(((keys[n] >= 0x7F800000) & alive[n]).any())]
        raise ValueError(f"{', '.join(bad[:5])} contain(s) inf or nan; refusing to prune on non-finite magnitudes")
    threshold, n_below, n_equal = _kth_key(flat, n_remove)
    kept = _keep_above(flat, threshold, n_remove - n_below, n_equal)
    for keep, m in zip(kept, alive_flat):
        if m is not None:  # sentinels sit above any threshold
            keep &= m
    return Mask(dict(zip(names, _split(kept, runs, shapes))))


def _remove_smallest_zeros_pruned(
    weights: Mapping[str, torch.Tensor], alive: Mask, n_remove: int, counts: Mapping[str, int]
) -> Mask | None:
    """Magnitude pruning for weights whose pruned entries are exact zeros: no masking pass.

    The pruned entries are then the smallest keys, so the threshold is the
    (pruned + n_remove)-th smallest key overall. Returns None when that does not
    hold (a pruned entry is not zero, the threshold is zero, or a key is not
    finite); the caller then takes the masked path.
    """
    names = list(alive)
    n_alive = sum(counts[n] for n in names)
    if n_remove <= 0 or n_remove > n_alive:
        return None
    shapes = [alive[n].shape for n in names]
    runs = _layout([alive[n].numel() for n in names])
    flat = _joined_keys([weights[n] for n in names], runs)
    if int(torch.stack([t.max() for t in flat]).max()) >= 0x7F800000:
        return None  # inf or nan: the general path says where
    n_dead = sum(t.numel() for t in flat) - n_alive
    threshold, n_below, n_equal = _kth_key(flat, n_dead + n_remove)
    if threshold == 0:
        return None
    kept = _keep_above(flat, threshold, n_dead + n_remove - n_below, n_equal)
    # If every pruned entry is zero, exactly n_alive - n_remove entries survive, all of them alive.
    # Dropping any pruned survivor and counting checks both: a non-zero pruned entry shifts the count.
    partial = [any(counts[names[i]] < alive[names[i]].numel() for i in range(a, b)) for a, b in runs]
    for keep, m, p in zip(kept, _join([alive[n] for n in names], runs), partial):
        if p:
            keep &= m
    if int(torch.stack([torch.count_nonzero(keep) for keep in kept]).sum()) != n_alive - n_remove:
        return None
    return Mask(dict(zip(names, _split(kept, runs, shapes))))


def _known_counts(mask: Mask, remaining: Mapping[str, int] | None) -> dict[str, int]:
    if remaining is None:
        return {n: _count(m) for n, m in mask.items()}
    return {n: int(remaining[n]) for n in mask}


def global_magnitude(
    weights: Mapping[str, torch.Tensor],
    mask: Mask,
    amount: float,
    *,
    pruned_are_zero: bool = False,
    remaining: Mapping[str, int] | None = None,
    seed: int = 0,
) -> Mask:
    """Remove the ``amount`` fraction of surviving entries with the smallest |w| across all tensors.

    ``pruned_are_zero=True`` says the weights are (probably) exact zeros wherever
    ``mask`` is False, as the pruner keeps them: that skips a masking pass, and the
    result is checked, falling back to the general path when the premise fails.
    ``remaining`` gives the survivors per tensor when the caller already counted them.
    ``seed`` is unused (magnitudes leave nothing to chance); every strategy accepts it.
    """
    _check_inputs(weights, mask)
    counts = _known_counts(mask, remaining)
    n_remove = _n_remove(amount, sum(counts.values()))
    if pruned_are_zero:
        out = _remove_smallest_zeros_pruned(weights, mask, n_remove, counts)
        if out is not None:
            return out
    return _remove_smallest({n: _magnitude_key(weights[n]) for n in mask}, mask, n_remove, counts)


def layerwise_magnitude(
    weights: Mapping[str, torch.Tensor],
    mask: Mask,
    amount: float | Mapping[str, float],
    *,
    pruned_are_zero: bool = False,
    remaining: Mapping[str, int] | None = None,
    seed: int = 0,
) -> Mask:
    """Remove the ``amount`` fraction of each tensor's survivors, smallest |w| first.

    ``amount`` may be a mapping name -> fraction for per-tensor rates;
    ``pruned_are_zero``, ``remaining`` and ``seed`` as in :func:`global_magnitude`.
    """
    _check_inputs(weights, mask)
    counts = _known_counts(mask, remaining)
    out: dict[str, torch.Tensor] = {}
    for n, m in mask.items():
        a = amount[n] if isinstance(amount, Mapping) else amount
        n_remove = _n_remove(a, counts[n])
        one = Mask({n: m})
        picked = _remove_smallest_zeros_pruned(weights, one, n_remove, {n: counts[n]}) if pruned_are_zero else None
        if picked is None:
            picked = _remove_smallest({n: _magnitude_key(weights[n])}, one, n_remove, {n: counts[n]})
        out[n] = picked[n]
    return Mask(out)


def _random_keys(m: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Below the bit pattern of +inf, so random keys never look like non-finite weights.
    return torch.randint(0, 0x7F800000, m.shape, generator=generator, dtype=torch.int32).to(m.device)


def random_pruning(
    weights: Mapping[str, torch.Tensor],
    mask: Mask,
    amount: float,
    *,
    generator: torch.Generator | None = None,
    seed: int = 0,
    pruned_are_zero: bool = False,
    remaining: Mapping[str, int] | None = None,
) -> Mask:
    """Remove the ``amount`` fraction of survivors uniformly at random across all tensors (a control).

    ``remaining`` as in :func:`global_magnitude`; ``pruned_are_zero`` is unused (random keys ignore the weights).
    """
    _check_inputs(weights, mask)
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    keys = {n: _random_keys(m, g) for n, m in mask.items()}
    counts = _known_counts(mask, remaining)
    return _remove_smallest(keys, mask, _n_remove(amount, sum(counts.values())), counts)


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
"""Scope name -> strategy function ``(weights, mask, amount) -> Mask``."""
