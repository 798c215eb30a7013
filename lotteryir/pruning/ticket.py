"""The compact ticket: a safetensors file holding a pruned network near its entropy bound.

Each pruned tensor is stored as its mask plus its surviving values (row-major
order). The mask is the positions of the rarer symbol (survivors below
density 0.5, pruned entries above), Golomb-Rice coded as gaps: the unary
quotients and the fixed-width remainders go to two packed bit streams, which
keeps both encoding and decoding vectorized. When a plain packed bitmap is
smaller (density near 0.5) the bitmap is stored instead. Every other tensor is
stored densely. For an i.i.d. mask the Rice code is within a few percent of the
binary entropy n * H(d) bits.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from safetensors import safe_open

from .files import atomic_save_safetensors
from .mask import Mask

FORMAT = "lotteryir-ticket"
FORMAT_VERSION = 1
_META_KEY = "lotteryir"
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


def _decode_positions(k: int, count: int, unary: np.ndarray, rem: np.ndarray) -> np.ndarray:
    zeros = np.flatnonzero(np.unpackbits(unary) == 0)[:count]
    q = np.diff(zeros, prepend=-1) - 1
    if k:
        bits = np.unpackbits(rem)[: count * k].reshape(count, k).astype(np.int64)
        r = bits @ (1 << np.arange(k - 1, -1, -1, dtype=np.int64))
    else:
        r = np.zeros(count, dtype=np.int64)
    gaps = (q.astype(np.int64) << k) | r
    return np.cumsum(gaps + 1) - 1


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


def _decode_mask(name: str, meta: Mapping, shape: tuple[int, ...], f) -> torch.Tensor:
    n = math.prod(shape)
    if meta["coding"] == "bitmap":
        flat = np.unpackbits(f.get_tensor(f"{name}::bits").numpy())[:n].astype(bool)
    else:
        pos = _decode_positions(
            int(meta["k"]), int(meta["count"]), f.get_tensor(f"{name}::unary").numpy(), f.get_tensor(f"{name}::rem").numpy()
        )
        kept = meta["positions_of"] == "kept"
        flat = np.zeros(n, dtype=bool) if kept else np.ones(n, dtype=bool)
        flat[pos] = kept
    return torch.from_numpy(flat).view(shape)


def save_compact(
    state_dict: Mapping[str, torch.Tensor],
    mask: Mask,
    path: str | os.PathLike,
    *,
    dtype: str = "fp32",
    metadata: Mapping[str, object] | None = None,
) -> None:
    """Write ``state_dict`` with the tensors named in ``mask`` stored compactly.

    ``dtype`` sets how surviving values are stored (fp32 exact; fp16/bf16 halve
    them, lossy). Tensors not in ``mask`` are stored densely as they are.
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
    header = {"format": FORMAT, "version": FORMAT_VERSION, "pruned": entries, "order": list(state_dict), **(metadata or {})}
    atomic_save_safetensors(tensors, path, {_META_KEY: json.dumps(header)})


def read_compact_metadata(path: str | os.PathLike) -> dict:
    """The ticket's header (model, size, density, source, version, ...) without loading tensors."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get(_META_KEY)
    if raw is None:
        raise ValueError(f"{path} is a safetensors file but not a lotteryir ticket (no '{_META_KEY}' metadata)")
    header = json.loads(raw)
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported ticket format {header.get('format')!r} v{header.get('version')!r}")
    return header


def is_compact(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a lotteryir compact ticket."""
    try:
        read_compact_metadata(path)
        return True
    except Exception:
        return False


def load_compact(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Mask, dict]:
    """Read a ticket: (plain state dict with pruned entries as zeros, its mask, header)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ticket not found: {path}")
    header = read_compact_metadata(path)
    out: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        for name in header["order"]:
            entry = header["pruned"].get(name)
            if entry is None:
                out[name] = f.get_tensor(name)
                continue
            shape = tuple(entry["shape"])
            m = _decode_mask(name, entry, shape, f)
            values = f.get_tensor(f"{name}::values").to(getattr(torch, entry["dtype"]))
            full = torch.zeros(math.prod(shape), dtype=values.dtype)
            full[m.flatten()] = values
            out[name] = full.view(shape)
            masks[name] = m
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
