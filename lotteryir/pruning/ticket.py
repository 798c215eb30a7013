"""The compact ticket: a safetensors file holding a pruned network near its entropy bound.

Each pruned tensor is stored as its mask plus its surviving values (row-major
order). The mask is the positions of the rarer symbol (survivors below
density 0.5, pruned entries above), Golomb-Rice coded as gaps: the unary
quotients and the fixed-width remainders go to two packed bit streams, which
keeps both encoding and decoding vectorized. When a plain packed bitmap is
smaller (density near 0.5) the bitmap is stored instead. Every other tensor is
stored densely. For an i.i.d. mask the Rice code is within a few percent of the
binary entropy n * H(d) bits.

Tickets come from other people, so the reader trusts nothing: the header is
checked against hard limits (dtypes from a fixed list, shapes, counts and stream
lengths consistent with each other and with the stored tensors) and, when the
model is known, against its shapes, all before any tensor is allocated. Every
stored tensor carries a CRC32 in the header and the header carries its own, so
a flipped byte is an error rather than a silently different network.
"""

from __future__ import annotations

import base64
import json
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from .._files import atomic_save_safetensors
from .mask import Mask

FORMAT = "lotteryir-ticket"
FORMAT_VERSION = 2  # 2 adds a CRC32 per stored tensor and of the header; version 1 still loads
_READABLE_VERSIONS = (1, 2)
_META_KEY = "lotteryir"
_HEADER_CRC_KEY = "lotteryir_crc32"  # of the header text itself
_VALUE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_STORED_VALUE_DTYPES = ("F32", "F16", "BF16")
# Hard limits checked before anything is allocated.
TENSOR_DTYPES = ("float32", "float16", "bfloat16", "float64")  # what a pruned tensor may declare
MAX_DIMS = 8
MAX_ELEMENTS = 2**31 - 1  # per pruned tensor
# Without a model to compare with, a ticket may declare at most this many pruned entries per byte
# of file (plus a floor): a ticket at density 1e-4 needs ~2,600. It stops a few hundred bytes from
# asking for gigabytes.
MAX_ELEMENTS_PER_BYTE = 4096
MIN_ELEMENT_BUDGET = 1 << 22
_MAX_RICE_K = 40


class TicketError(ValueError):
    """A file that is not a lotteryir ticket, or one that is damaged or malformed; names the file."""


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
    if meta["coding"] == "bitmap":
        return np.unpackbits(streams["bits"].numpy())[:n].astype(bool)
    pos = _decode_positions(
        int(meta["k"]), int(meta["count"]), n, streams["unary"].numpy(), streams["rem"].numpy(), where
    )
    kept = meta["positions_of"] == "kept"
    flat = np.zeros(n, dtype=bool) if kept else np.ones(n, dtype=bool)
    flat[pos] = kept
    return flat


def _crc(t: torch.Tensor) -> int:
    """CRC32 of a tensor's bytes as safetensors stores them."""
    flat = t.detach().cpu().contiguous().reshape(-1)
    return zlib.crc32(flat.view(torch.uint8).numpy() if flat.numel() else b"")


def _stored_keys(order: list[str], pruned: Mapping[str, Mapping]) -> list[str]:
    """The stored tensors' keys in the header's order (a pruned tensor is 2 or 3 streams)."""
    keys: list[str] = []
    for name in order:
        entry = pruned.get(name)
        if entry is None:
            keys.append(name)
        else:
            streams = ("bits",) if entry.get("coding") == "bitmap" else ("unary", "rem")
            keys += [f"{name}::{s}" for s in (*streams, "values")]
    return keys


def _pack_crcs(crcs: list[int]) -> str:
    # 4 bytes each, base64: ~5 KB for the full MIR-L, where a JSON map by name took 60 KB.
    return base64.b64encode(np.asarray(crcs, dtype=">u4").tobytes()).decode("ascii")


def _unpack_crcs(text: object, count: int) -> list[int] | None:
    try:
        raw = base64.b64decode(str(text), validate=True)
    except ValueError:
        return None
    return np.frombuffer(raw, dtype=">u4").tolist() if len(raw) == 4 * count else None


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
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "pruned": entries,
        "order": list(state_dict),
        **(metadata or {}),
    }
    header["crc32"] = _pack_crcs([_crc(tensors[k]) for k in _stored_keys(header["order"], entries)])
    raw = json.dumps(header)
    atomic_save_safetensors(tensors, path, {_META_KEY: raw, _HEADER_CRC_KEY: str(zlib.crc32(raw.encode()))})


def _read_header(path: Path) -> tuple[dict, dict[str, tuple[tuple[int, ...], str]]]:
    """The validated header and the stored tensors' (shape, dtype) from the safetensors table; no data read."""
    if not path.exists():
        raise FileNotFoundError(f"ticket not found: {path}")
    if not path.is_file():
        raise TicketError(f"{path} is a directory, not a ticket file")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise TicketError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            info = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types
        raise TicketError(f"{path} is not a readable safetensors file ({e})") from e
    raw = meta.get(_META_KEY)
    if raw is None:
        raise TicketError(f"{path} is a safetensors file but not a lotteryir ticket (no '{_META_KEY}' metadata)")
    return _check_header(path, raw, meta.get(_HEADER_CRC_KEY), info), info


def _check_header(path: Path, raw: str, crc: str | None, info: Mapping[str, tuple[tuple[int, ...], str]]) -> dict:
    def bad(why: str) -> TicketError:
        return TicketError(f"{path} is damaged or not a valid ticket: {why}")

    if crc is not None and (not crc.isdigit() or int(crc) != zlib.crc32(raw.encode())):
        raise bad("the header's checksum does not match")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as e:
        raise bad(f"the header is not JSON ({e.msg})") from e
    if (
        not isinstance(header, dict)
        or header.get("format") != FORMAT
        or header.get("version") not in _READABLE_VERSIONS
    ):
        fmt, ver = (header.get("format"), header.get("version")) if isinstance(header, dict) else (None, None)
        raise TicketError(
            f"{path}: unsupported ticket format {fmt!r} v{ver!r} (this lotteryir reads {FORMAT} "
            f"v{', v'.join(map(str, _READABLE_VERSIONS))})"
        )
    checked = header["version"] >= 2
    if checked and crc is None:
        raise bad("the header's checksum is missing")
    order, pruned = header.get("order"), header.get("pruned")
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order) or len(set(order)) != len(order):
        raise bad("'order' must list distinct tensor names")
    if not isinstance(pruned, dict) or not set(pruned) <= set(order):
        raise bad("'pruned' must describe tensors named in 'order'")
    expected: dict[str, int | None] = {}  # stored key -> its length in elements when the header fixes it
    for name in order:
        entry = pruned.get(name)
        if entry is None:
            expected[name] = None
        else:
            expected.update(_check_entry(name, entry, bad))
    stored = set(info)
    if stored != set(expected):
        missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
        raise bad(
            f"the stored tensors do not match the header (missing: {', '.join(missing[:3]) or 'none'}; "
            f"unexpected: {', '.join(extra[:3]) or 'none'})"
        )
    for key, length in expected.items():
        shape, dtype = info[key]
        if "::" in key and (len(shape) != 1 or (length is not None and shape[0] != length)):
            raise bad(f"stream {key} holds {list(shape)} elements, the header implies [{length}]")
        if key.endswith("::values"):
            if dtype not in _STORED_VALUE_DTYPES:
                raise bad(f"stream {key} has dtype {dtype}, expected one of {', '.join(_STORED_VALUE_DTYPES)}")
        elif "::" in key and dtype != "U8":
            raise bad(f"stream {key} has dtype {dtype}, expected U8")
    if checked:
        if _unpack_crcs(header.get("crc32"), len(stored)) is None:
            raise bad("the per-tensor checksums are missing or incomplete")
    return header


def _check_entry(name: str, entry: object, bad) -> dict[str, int | None]:
    """Check one pruned tensor's header entry; its stream keys with the lengths the entry implies."""
    if not isinstance(entry, dict):
        raise bad(f"{name}: the entry is not an object")
    shape = entry.get("shape")
    if not (
        isinstance(shape, list)
        and len(shape) <= MAX_DIMS
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise bad(f"{name}: invalid shape {shape!r}")
    n = math.prod(shape)
    if n > MAX_ELEMENTS:
        raise bad(f"{name}: {n:,} entries is more than the limit of {MAX_ELEMENTS:,}")
    if entry.get("dtype") not in TENSOR_DTYPES:
        raise bad(f"{name}: dtype {entry.get('dtype')!r} is not one of {', '.join(TENSOR_DTYPES)}")
    coding = entry.get("coding")
    if coding == "bitmap":
        return {f"{name}::bits": (n + 7) // 8, f"{name}::values": None}
    if coding != "rice":
        raise bad(f"{name}: unknown mask coding {coding!r}")
    k, count, of = entry.get("k"), entry.get("count"), entry.get("positions_of")
    if not (
        isinstance(k, int)
        and 0 <= k <= _MAX_RICE_K
        and isinstance(count, int)
        and 0 <= count <= n
        and of in ("kept", "pruned")
    ):
        raise bad(f"{name}: invalid Rice parameters (k={k!r}, count={count!r}, positions_of={of!r})")
    return {
        f"{name}::unary": None,
        f"{name}::rem": (count * k + 7) // 8,
        f"{name}::values": count if of == "kept" else n - count,
    }


def read_compact_metadata(path: str | os.PathLike) -> dict:
    """The ticket's header (model, size, density, source, version, ...), checked, without loading tensors."""
    return _read_header(Path(path))[0]


def compact_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape as the ticket declares it (checked, nothing allocated)."""
    header, info = _read_header(Path(path))
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
    path: str | os.PathLike, expected_shapes: Mapping[str, Sequence[int]] | None = None
) -> tuple[dict[str, torch.Tensor], Mask, dict]:
    """Read a ticket: (plain state dict with pruned entries as zeros, its mask, header).

    Everything the header declares is checked before anything is allocated: against
    ``expected_shapes`` (name -> shape, e.g. the model's) when given, else against hard
    limits relative to the file's size. Every stored tensor is checked against its CRC32
    (tickets of format version 1 have none). Raises TicketError naming the file.
    """
    path = Path(path)
    header, info = _read_header(path)
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
        size = path.stat().st_size
        total = sum(math.prod(header["pruned"][n]["shape"]) for n in header["pruned"])
        budget = max(MIN_ELEMENT_BUDGET, MAX_ELEMENTS_PER_BYTE * size)
        if total > budget:
            raise TicketError(
                f"{path} declares {total:,} pruned weights in {size:,} bytes, more than a ticket can encode; if it "
                "is genuine, load it with its model (load_ticket(path, model=...)), which checks it against the network"
            )
    keys = _stored_keys(header["order"], header["pruned"])
    crcs = dict(zip(keys, _unpack_crcs(header["crc32"], len(keys)))) if header["version"] >= 2 else None

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
            keys = ("bits",) if entry["coding"] == "bitmap" else ("unary", "rem")
            streams = {k: stored(f, f"{name}::{k}") for k in keys}
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
