"""The compact ticket: a safetensors file holding a pruned network near its entropy bound.

Each pruned tensor is stored as its mask plus its surviving values (row-major
order). The mask is the positions of the rarer symbol (survivors below
density 0.5, pruned entries above), Golomb-Rice coded as gaps: the unary
quotients and the fixed-width remainders go to two packed bit streams, which
keeps both encoding and decoding vectorized. When a plain packed bitmap is
smaller (density near 0.5) the bitmap is stored instead. Every other tensor is
stored densely. For an i.i.d. mask the Rice code is within a few percent of the
binary entropy n * H(d) bits.

Tickets come from other people, so the reader trusts nothing (ticket_header.py):
the header is checked against hard limits (dtypes from a fixed list, shapes, counts
and stream lengths consistent with each other and with the stored tensors) and,
when the model is known, against its shapes, else against a total budget of
entries and bytes, all before any tensor is allocated. Every stored tensor carries
a CRC32 in the header and the header carries its own, so a flipped byte is an error
rather than a silently different network; version 1 tickets, which have none, load
only when the caller asks.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch
from safetensors import safe_open

from .._files import atomic_save_safetensors
from .mask import Mask
from .ticket_header import (  # noqa: F401 - the limits and helpers are part of this module's names
    _HEADER_CRC_KEY,
    _META_KEY,
    _STORED_VALUE_DTYPES,
    BYTE_CEILING,
    ELEMENT_CEILING,
    FORMAT,
    FORMAT_VERSION,
    MAX_DIMS,
    MAX_ELEMENTS,
    MAX_ELEMENTS_PER_BYTE,
    MIN_ELEMENT_BUDGET,
    TENSOR_DTYPES,
    TicketError,
    _crc,
    _pack_crcs,
    _stored_keys,
    _unpack_crcs,
    check_budget,
    read_header,
)

_VALUE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _encode_positions(pos: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Rice-code sorted positions as gaps: (k, packed unary stream, packed remainder stream)."""
    gaps = np.diff(pos, prepend=-1) - 1
    mean = float(gaps.mean()) if gaps.size else 0.0
    guess = max(0, int(math.log2(mean * math.log(2))) if mean > 1 else 0)
    best = min(range(max(0, guess - 1), guess + 3), key=lambda k: gaps.size * (k + 1) + int((gaps >> k).sum()))
    q = gaps >> best
    unary = np.ones(int(q.sum()) + gaps.size, dtype=np.uint8)
    unary[np.cumsum(q + 1) - 1] = 0  # each quotient: q ones, then a zero
    if best:
        r = gaps & ((1 << best) - 1)
        bits = ((r[:, None] >> np.arange(best - 1, -1, -1)) & 1).astype(np.uint8)
    else:
        bits = np.zeros((gaps.size, 0), dtype=np.uint8)
    return best, np.packbits(unary), np.packbits(bits.reshape(-1))


def _decode_positions(k: int, count: int, n: int, unary: np.ndarray, rem: np.ndarray, where: str) -> np.ndarray:
    zeros = np.flatnonzero(np.unpackbits(unary) == 0)
    if zeros.size < count:
        raise TicketError(f"{where}: the unary stream holds {zeros.size} codes, the header says {count}")
    zeros = zeros[:count]
    q = np.diff(zeros, prepend=-1) - 1
    if q.size and int(q.max()) > (n >> k):  # also keeps q << k far from overflowing
        raise TicketError(f"{where}: a gap reaches beyond the tensor's {n} entries")
    if k:
        bits = np.unpackbits(rem)[: count * k].reshape(count, k).astype(np.int64)
        r = bits @ (1 << np.arange(k - 1, -1, -1, dtype=np.int64))
    else:
        r = np.zeros(count, dtype=np.int64)
    gaps = (q.astype(np.int64) << k) | r
    pos = np.cumsum(gaps + 1) - 1
    if pos.size and int(pos[-1]) >= n:
        raise TicketError(f"{where}: position {int(pos[-1])} is beyond the tensor's {n} entries")
    return pos


def _encode_mask(name: str, mask: torch.Tensor) -> tuple[dict, dict[str, torch.Tensor]]:
    flat = mask.flatten().cpu().numpy()
    n, nnz = flat.size, int(flat.sum())
    rare = bool(nnz <= n - nnz)  # code the positions of the rarer symbol
    pos = np.flatnonzero(flat if rare else ~flat).astype(np.int64)
    k, unary, rem = _encode_positions(pos)
    if unary.nbytes + rem.nbytes < (n + 7) // 8:
        meta = {"coding": "rice", "k": k, "positions_of": "kept" if rare else "pruned", "count": int(pos.size)}
        return meta, {f"{name}::unary": torch.from_numpy(unary), f"{name}::rem": torch.from_numpy(rem)}
    return {"coding": "bitmap"}, {f"{name}::bits": torch.from_numpy(np.packbits(flat))}


def _decode_mask(name: str, meta: Mapping, n: int, streams: Mapping[str, torch.Tensor], where: str) -> np.ndarray:
    # What this allocates is bounded in ticket_header.decode_cost: change the two together.
    if meta["coding"] == "bitmap":
        return np.unpackbits(streams["bits"].numpy())[:n].astype(bool)
    pos = _decode_positions(
        int(meta["k"]), int(meta["count"]), n, streams["unary"].numpy(), streams["rem"].numpy(), where
    )
    kept = meta["positions_of"] == "kept"
    flat = np.zeros(n, dtype=bool) if kept else np.ones(n, dtype=bool)
    flat[pos] = kept
    return flat


def save_compact(
    state_dict: Mapping[str, torch.Tensor],
    mask: Mask,
    path: str | os.PathLike,
    *,
    dtype: str = "fp32",
    metadata: Mapping[str, object] | None = None,
    overwrite: bool = True,
) -> None:
    """Write ``state_dict`` with the tensors named in ``mask`` stored compactly.

    ``dtype`` sets how surviving values are stored (fp32 exact; fp16/bf16 halve
    them, lossy). Tensors not in ``mask`` are stored densely as they are. Without
    ``overwrite`` an existing ``path`` is never replaced, even one that another
    process creates while this one writes (FileExistsError naming it).
    """
    if dtype not in _VALUE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_VALUE_DTYPES)}, got {dtype!r}")
    missing = [n for n in mask if n not in state_dict]
    if missing:
        raise KeyError(f"mask names tensors missing from the state dict: {', '.join(missing[:5])}")
    tensors: dict[str, torch.Tensor] = {}
    entries: dict[str, dict] = {}
    for name, value in state_dict.items():
        value = value.detach().cpu()
        if "::" in name:
            raise ValueError(f"tensor name {name!r} contains '::', which the ticket format reserves")
        if name in mask:
            m = mask[name].cpu()
            if tuple(m.shape) != tuple(value.shape):
                raise ValueError(f"{name}: mask shape {tuple(m.shape)} != tensor shape {tuple(value.shape)}")
            meta, streams = _encode_mask(name, m)
            tensors.update(streams)
            tensors[f"{name}::values"] = value.flatten()[m.flatten()].to(_VALUE_DTYPES[dtype]).contiguous()
            entries[name] = {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch."), **meta}
        else:
            tensors[name] = value.contiguous()
    header: dict[str, object] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "pruned": entries,
        "order": list(state_dict),
        **(metadata or {}),
    }
    # A list of names: list(state_dict), or whatever ``metadata`` replaced it with (ticket_metadata never does).
    order = cast(list[str], header["order"])
    header["crc32"] = _pack_crcs([_crc(tensors[k]) for k in _stored_keys(order, entries)])
    raw = json.dumps(header)
    meta = {_META_KEY: raw, _HEADER_CRC_KEY: str(zlib.crc32(raw.encode()))}
    atomic_save_safetensors(tensors, path, meta, overwrite=overwrite)


def read_compact_metadata(path: str | os.PathLike, *, allow_unchecked: bool = False) -> dict:
    """The ticket's header (model, size, density, source, version, ...), checked, without loading tensors.

    A version 1 ticket (no checksums) is refused unless ``allow_unchecked``.
    """
    return read_header(Path(path), allow_unchecked)[0]


def compact_shapes(path: str | os.PathLike, *, allow_unchecked: bool = False) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape as the ticket declares it (checked, nothing allocated)."""
    header, info = read_header(Path(path), allow_unchecked)
    return {
        name: tuple(header["pruned"][name]["shape"]) if name in header["pruned"] else info[name][0]
        for name in header["order"]
    }


def is_compact(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file that claims to be a lotteryir ticket (valid or not)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return _META_KEY in (f.metadata() or {})
    except Exception:  # noqa: BLE001 - not a readable safetensors file at all
        return False


def load_compact(
    path: str | os.PathLike,
    expected_shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    max_elements: int | None = None,
    max_bytes: int | None = None,
    allow_unchecked: bool = False,
) -> tuple[dict[str, torch.Tensor], Mask, dict]:
    """Read a ticket: (plain state dict with pruned entries as zeros, its mask, header).

    Everything the header declares is checked before anything is allocated: against
    ``expected_shapes`` (name -> shape, e.g. the model's) when given, else against a budget
    of pruned entries and bytes proportional to the file's size, with a ceiling
    (``ticket_header.default_budget``; ``max_elements``/``max_bytes`` replace it). Every
    stored tensor is checked against its CRC32. Tickets of format version 1 have none and
    load only with ``allow_unchecked``. Raises TicketError naming the file.
    """
    path = Path(path)
    header, info = read_header(path, allow_unchecked)
    declared = {
        name: tuple(header["pruned"][name]["shape"]) if name in header["pruned"] else info[name][0]
        for name in header["order"]
    }
    if expected_shapes is not None:
        wrong = [
            f"{k} ({list(declared[k])} in the ticket, {list(expected_shapes[k])} in the model)"
            for k in declared
            if k in expected_shapes and tuple(declared[k]) != tuple(expected_shapes[k])
        ]
        missing, extra = (
            [k for k in expected_shapes if k not in declared],
            [k for k in declared if k not in expected_shapes],
        )
        if wrong or missing or extra:
            parts = [
                f"{what}: {', '.join(keys[:3])}" + (f" ... ({len(keys)} in all)" if len(keys) > 3 else "")
                for what, keys in (("wrong shapes", wrong), ("missing", missing), ("unexpected", extra))
                if keys
            ]
            raise TicketError(f"{path} does not fit the model: " + "; ".join(parts))
    else:
        check_budget(path, header, info, max_elements, max_bytes)
    keys = _stored_keys(header["order"], header["pruned"])
    crcs: dict[str, int] | None = None
    if header["version"] >= 2:
        unpacked = _unpack_crcs(header["crc32"], len(keys))
        if unpacked is None:  # read_header refuses such a header; checked again for the type
            raise TicketError(f"{path} is damaged: the per-tensor checksums are missing or incomplete")
        crcs = dict(zip(keys, unpacked))

    def stored(f, key: str) -> torch.Tensor:
        t = f.get_tensor(key)
        if crcs is not None and _crc(t) != crcs[key]:
            raise TicketError(f"{path} is damaged: the checksum of {key} does not match")
        return t

    out: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        for name in header["order"]:
            entry = header["pruned"].get(name)
            if entry is None:
                out[name] = stored(f, name)
                continue
            shape = tuple(entry["shape"])
            n = math.prod(shape)
            kinds = ("bits",) if entry["coding"] == "bitmap" else ("unary", "rem")
            streams = {k: stored(f, f"{name}::{k}") for k in kinds}
            flat = _decode_mask(name, entry, n, streams, f"{path}: {name}")
            values = stored(f, f"{name}::values")
            if int(flat.sum()) != values.numel():
                raise TicketError(
                    f"{path} is damaged: {name} keeps {int(flat.sum())} entries but stores {values.numel()} values"
                )
            values = values.to(getattr(torch, entry["dtype"]))
            m = torch.from_numpy(flat)
            full = torch.zeros(n, dtype=values.dtype)
            full[m] = values
            out[name] = full.view(shape)
            masks[name] = m.view(shape)
    return out, Mask(masks), header


def entropy_bound_bytes(state_dict: Mapping[str, torch.Tensor], mask: Mask, value_bytes: int = 4) -> float:
    """sum over masked tensors of n*H(d)/8 + nnz*value_bytes, plus the others' dense bytes."""
    total = 0.0
    for name, value in state_dict.items():
        if name in mask:
            n = mask[name].numel()
            nnz = int(torch.count_nonzero(mask[name]))
            d = nnz / n if n else 1.0
            h = 0.0 if d in (0.0, 1.0) else -(d * math.log2(d) + (1 - d) * math.log2(1 - d))
            total += n * h / 8 + nnz * value_bytes
        else:
            total += value.numel() * value.element_size()
    return total
