"""A ticket's header, trusted not at all: hard limits, version, checksums and the no-model budget.

Everything here reads only the safetensors table and the JSON header; no tensor data. The
checks run before the reader allocates anything, so a crafted header costs a few hundred bytes
of reading, never gigabytes of memory.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

FORMAT = "lotteryir-ticket"
FORMAT_VERSION = 2  # 2 adds a CRC32 per stored tensor and of the header; version 1 loads only when asked
_READABLE_VERSIONS = (1, 2)
_META_KEY = "lotteryir"
_HEADER_CRC_KEY = "lotteryir_crc32"  # of the header text itself
_STORED_VALUE_DTYPES = ("F32", "F16", "BF16")
# Hard limits checked before anything is allocated.
TENSOR_DTYPES = ("float32", "float16", "bfloat16", "float64")  # what a pruned tensor may declare
_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
MAX_DIMS = 8
MAX_ELEMENTS = 2**31 - 1  # per pruned tensor
_MAX_RICE_K = 40
# Without a model to compare with, what a ticket may make the reader allocate, in all: proportional
# to the file's size (a ticket at density 1e-4 needs ~2,600 entries per byte), above a floor that
# lets small tickets through and below a ceiling that no file size lifts. Callers with bigger
# networks pass max_elements= / max_bytes=, or the model itself.
MAX_ELEMENTS_PER_BYTE = 4096
MAX_BYTES_PER_BYTE = 5 * MAX_ELEMENTS_PER_BYTE  # a float32 entry and its mask byte
MIN_ELEMENT_BUDGET = 1 << 22
MIN_BYTE_BUDGET = 1 << 26  # 64 MiB
ELEMENT_CEILING = 1 << 28  # 268M weights, 7.5x the full MIR-L
BYTE_CEILING = 1 << 31  # 2 GiB


class TicketError(ValueError):
    """A file that is not a lotteryir ticket, or one that is damaged or malformed; names the file."""


def _crc(t: torch.Tensor) -> int:
    """CRC32 of a tensor's bytes as safetensors stores them."""
    flat = t.detach().cpu().contiguous().reshape(-1)
    return zlib.crc32(flat.view(torch.uint8).numpy().data if flat.numel() else b"")  # .data: the buffer, no copy


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


Info = Mapping[str, tuple[tuple[int, ...], str]]  # stored key -> (shape, safetensors dtype)


def read_header(path: Path, allow_unchecked: bool = False) -> tuple[dict, dict[str, tuple[tuple[int, ...], str]]]:
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
    return _check_header(path, raw, meta.get(_HEADER_CRC_KEY), info, allow_unchecked), info


def _check_version(path: Path, header: object, crc: str | None, allow_unchecked: bool, bad) -> None:
    version = header.get("version") if isinstance(header, dict) else None
    if (
        not isinstance(header, dict)
        or header.get("format") != FORMAT
        or isinstance(version, bool)  # JSON true == 1 in Python: not a version
        or version not in _READABLE_VERSIONS
    ):
        fmt = header.get("format") if isinstance(header, dict) else None
        raise TicketError(
            f"{path}: unsupported ticket format {fmt!r} v{version!r} (this lotteryir reads {FORMAT} "
            f"v{', v'.join(map(str, _READABLE_VERSIONS))})"
        )
    if version == 1:
        # 0.1 wrote neither checksum: a v1 label beside one is a v2 file with its checks switched off.
        if crc is not None or "crc32" in header:
            raise bad("it says format version 1 but carries version 2 checksums (a relabelled version 2 ticket)")
        if not allow_unchecked:
            raise TicketError(
                f"{path} is a version 1 ticket (lotteryir 0.1): it has no checksums, so damage in it cannot be "
                "detected. If you trust it, load it with allow_unchecked=True (--allow-unchecked on the command "
                f"line) and rewrite it as a checked version 2 ticket: lotteryir export {path} -o new.safetensors "
                "--allow-unchecked"
            )
    elif crc is None:
        raise bad("the header's checksum is missing")


def _check_header(path: Path, raw: str, crc: str | None, info: Info, allow_unchecked: bool = False) -> dict:
    def bad(why: str) -> TicketError:
        return TicketError(f"{path} is damaged or not a valid ticket: {why}")

    if crc is not None and (not crc.isdigit() or int(crc) != zlib.crc32(raw.encode())):
        raise bad("the header's checksum does not match")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as e:
        raise bad(f"the header is not JSON ({e.msg})") from e
    _check_version(path, header, crc, allow_unchecked, bad)
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
    if header["version"] >= 2 and _unpack_crcs(header.get("crc32"), len(stored)) is None:
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
        and not isinstance(k, bool)
        and 0 <= k <= _MAX_RICE_K
        and isinstance(count, int)
        and not isinstance(count, bool)
        and 0 <= count <= n
        and of in ("kept", "pruned")
    ):
        raise bad(f"{name}: invalid Rice parameters (k={k!r}, count={count!r}, positions_of={of!r})")
    return {
        f"{name}::unary": None,
        f"{name}::rem": (count * k + 7) // 8,
        f"{name}::values": count if of == "kept" else n - count,
    }


def _stored_bytes(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes of a stored tensor; unknown dtypes count as 8 bytes an element (an upper bound)."""
    size = {"U8": 1, "I8": 1, "BOOL": 1, "F16": 2, "BF16": 2, "I16": 2, "F32": 4, "I32": 4}.get(dtype, 8)
    return math.prod(shape) * size


def decode_cost(header: Mapping, info: Info) -> tuple[int, int]:
    """(pruned entries, peak bytes) that reading the ticket allocates, from its header alone.

    The result (dense tensors as stored; each pruned tensor at its dtype plus a bool mask) stays
    in memory to the end; on top of it the largest one-tensor decode: the streams read, unpacked
    to one byte a bit, the positions as int64, the values converted and indexed. This mirrors
    ``ticket.load_compact`` and is an upper bound of it (the property test measures it).
    """
    elements, result, transient = 0, 0, 0
    for name in header["order"]:
        entry = header["pruned"].get(name)
        if entry is None:
            result += _stored_bytes(*info[name])
            continue
        n, item = math.prod(entry["shape"]), _ITEMSIZE[entry["dtype"]]
        elements += n
        result += n * (item + 1)
        nnz = info[f"{name}::values"][0][0]
        common = _stored_bytes(*info[f"{name}::values"]) + nnz * (item + 8)
        if entry["coding"] == "bitmap":
            bits = info[f"{name}::bits"][0][0]
            cost = 9 * bits + n
        else:
            unary, rem = info[f"{name}::unary"][0][0], info[f"{name}::rem"][0][0]
            codes = min(int(entry["count"]), 8 * unary)  # the decoder stops at the zeros the stream holds
            cost = 81 * unary + 73 * rem + 64 * codes
        transient = max(transient, cost + common)
    return elements, result + transient


def default_budget(size: int) -> tuple[int, int]:
    """(max pruned entries, max bytes) a ticket file of ``size`` bytes may make the reader allocate."""
    return (
        min(ELEMENT_CEILING, max(MIN_ELEMENT_BUDGET, MAX_ELEMENTS_PER_BYTE * size)),
        min(BYTE_CEILING, max(MIN_BYTE_BUDGET, MAX_BYTES_PER_BYTE * size)),
    )


def check_budget(
    path: Path, header: Mapping, info: Info, max_elements: int | None = None, max_bytes: int | None = None
) -> None:
    """Refuse a ticket whose decoding would allocate more than the budget, before anything is allocated."""
    size = path.stat().st_size
    default_elements, default_bytes = default_budget(size)
    max_elements = default_elements if max_elements is None else max_elements
    max_bytes = default_bytes if max_bytes is None else max_bytes
    elements, peak = decode_cost(header, info)
    if elements > max_elements or peak > max_bytes:
        raise TicketError(
            f"{path} declares {elements:,} pruned weights ({peak / 2**20:,.1f} MiB to decode) in {size:,} bytes, "
            f"more than the budget for reading a ticket without its model ({max_elements:,} weights, "
            f"{max_bytes / 2**20:,.1f} MiB). If it is genuine, load it with its model (load_ticket(path, "
            "model=...)), which checks it against the network, or raise the budget "
            "(read_ticket(path, max_elements=..., max_bytes=...))"
        )
