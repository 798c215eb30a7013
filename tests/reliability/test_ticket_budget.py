"""Issue 22.2: reading a ticket without its model allocates at most a budget, checked before anything is.

Memory is measured by capping the process's address space (RLIMIT_AS) around the read at what is
in use plus the budget, the mapped file and a small slack: every allocation the reader requests
beyond that fails at once (numpy's MemoryError, torch's "can't allocate"), whether or not its
pages are ever touched, so an over-budget request cannot hide behind lazy allocation.
"""

from __future__ import annotations

import json
import math
import resource
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

import lotteryir.pruning.ticket as ticket_module
from lotteryir import read_ticket
from lotteryir.pruning import Mask
from lotteryir.pruning.ticket import TicketError, save_compact

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmSize from /proc")

SLACK = 8 << 20  # Python objects, safetensors' table, hypothesis: not the reader's arrays
MiB = 1 << 20


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


@contextmanager
def address_space(extra: int):
    """Let the process map at most ``extra`` more bytes than it has mapped now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_size() + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _write(path: Path, header: dict, tensors: dict[str, torch.Tensor]) -> None:
    """A version 2 ticket with valid checksums, as someone crafting one would write it."""
    keys = ticket_module._stored_keys(header["order"], header["pruned"])
    header["crc32"] = ticket_module._pack_crcs([ticket_module._crc(tensors[k]) for k in keys])
    raw = json.dumps(header)
    save_file(tensors, str(path), metadata={"lotteryir": raw, "lotteryir_crc32": str(zlib.crc32(raw.encode()))})


def _reported(path: Path) -> None:
    """The reported file: a 1 MB dense tensor and two pruned entries of 2**31-1, Rice, count 0."""
    tensors = {"pad": torch.zeros(1 << 18)}
    pruned = {}
    for name in ("w1", "w2"):
        pruned[name] = {
            "shape": [2**31 - 1],
            "dtype": "float32",
            "coding": "rice",
            "k": 0,
            "positions_of": "kept",
            "count": 0,
        }
        tensors |= {
            f"{name}::unary": torch.zeros(0, dtype=torch.uint8),
            f"{name}::rem": torch.zeros(0, dtype=torch.uint8),
        }
        tensors[f"{name}::values"] = torch.zeros(0)
    _write(path, {"format": "lotteryir-ticket", "version": 2, "order": ["pad", "w1", "w2"], "pruned": pruned}, tensors)


@pytest.fixture(autouse=True, scope="module")
def _warm():
    """Start torch's and numpy's thread pools and allocator arenas before any cap is set."""
    x = torch.zeros(1 << 22)
    x[torch.rand(1 << 22) < 0.5] = 1.0
    np.unpackbits(np.zeros(1 << 16, dtype=np.uint8))


def test_the_reported_ticket_is_refused_before_allocating(tmp_path):
    path = tmp_path / "crafted.safetensors"
    _reported(path)
    assert path.stat().st_size < 1.1 * MiB
    with address_space(64 * MiB + path.stat().st_size), pytest.raises(TicketError) as info:
        read_ticket(path)
    message = str(info.value)
    assert str(path) in message and "declares 4,294,967,294 pruned weights" in message
    assert "max_elements=" in message and "max_bytes=" in message and "model=" in message  # how to override
    from lotteryir.pruning import ticket_header as header_module

    elements, peak = header_module.default_budget(path.stat().st_size)
    assert elements <= header_module.ELEMENT_CEILING and peak <= header_module.BYTE_CEILING == 2 << 30
    # The caller may raise the budget; a small explicit one is enforced as well.
    with pytest.raises(TicketError, match="16 weights"):
        read_ticket(path, max_elements=16)


def test_no_file_size_lifts_the_default_budget_above_its_ceiling():
    from lotteryir.pruning import ticket_header as header_module

    for size in (0, 1, 10**6, 10**9, 10**12):
        elements, peak = header_module.default_budget(size)
        assert header_module.MIN_ELEMENT_BUDGET <= elements <= header_module.ELEMENT_CEILING
        assert header_module.MIN_BYTE_BUDGET <= peak <= header_module.BYTE_CEILING
    assert header_module.default_budget(10**6) == (2**28, 2**31)  # 1 MB asks for at most 2 GiB


@st.composite
def crafted(draw) -> tuple[dict, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """A self-consistent header with random shapes, codings and counts, its streams, and the masks it encodes."""
    tensors: dict[str, torch.Tensor] = {"pad": torch.zeros(draw(st.sampled_from([0, 1 << 10, 1 << 18])))}
    pruned: dict[str, dict] = {}
    masks: dict[str, np.ndarray] = {}
    dims = st.sampled_from([0, 1, 3, 7, 64, 1000, 1 << 16, 1 << 20, 1 << 22, 1 << 23, 2**31 - 1])
    for i in range(draw(st.integers(1, 3))):
        name = f"w{i}"
        shape = draw(st.lists(dims, min_size=1, max_size=3))
        n = math.prod(shape)
        if n > ticket_module.MAX_ELEMENTS:
            shape, n = [2**31 - 1], 2**31 - 1
        entry = {"shape": shape, "dtype": draw(st.sampled_from(ticket_module.TENSOR_DTYPES))}
        coding = draw(st.sampled_from(["rice", "bitmap"]))
        if coding == "bitmap" and n <= 8 << 20:
            keep_all = draw(st.booleans()) and n <= 1 << 16
            bits = np.packbits(np.full(n, keep_all))
            tensors[f"{name}::bits"] = torch.from_numpy(bits)
            tensors[f"{name}::values"] = torch.ones(n if keep_all else 0)
            entry["coding"] = "bitmap"
            masks[name] = ("all" if keep_all else "none", n)
        else:
            of = draw(st.sampled_from(["kept", "pruned"]))
            count = draw(st.sampled_from([0, 1, 100, n])) if of == "kept" or n <= 1 << 16 else n
            count = min(count, n, 1 << 16)
            k = draw(st.integers(0, 4))
            # count gaps of 0: positions 0 .. count-1
            tensors[f"{name}::unary"] = torch.zeros((count + 7) // 8, dtype=torch.uint8)
            tensors[f"{name}::rem"] = torch.zeros((count * k + 7) // 8, dtype=torch.uint8)
            kept = count if of == "kept" else n - count
            if kept > 1 << 18:  # values must be stored: a file of reasonable size cannot hold more
                count, of, kept = 0, "kept", 0
                tensors[f"{name}::unary"] = torch.zeros(0, dtype=torch.uint8)
                tensors[f"{name}::rem"] = torch.zeros(0, dtype=torch.uint8)
            tensors[f"{name}::values"] = torch.ones(kept)
            entry |= {"coding": "rice", "k": k, "positions_of": of, "count": count}
            masks[name] = ("first", count if of == "kept" else None, n)
        pruned[name] = entry
    header = {"format": "lotteryir-ticket", "version": 2, "order": ["pad", *pruned], "pruned": pruned}
    return header, tensors, masks


def _empty_rice(*shapes: list[int], dtype: str = "float64") -> tuple[dict, dict, dict]:
    """Entries that keep nothing (Rice, count 0): the most entries per byte a header can declare."""
    tensors: dict[str, torch.Tensor] = {"pad": torch.zeros(1 << 10)}  # 4 KB: budget for 16M entries
    pruned, masks = {}, {}
    for i, shape in enumerate(shapes):
        name = f"w{i}"
        pruned[name] = {"shape": shape, "dtype": dtype, "coding": "rice", "k": 0, "positions_of": "kept", "count": 0}
        tensors |= {f"{name}::{s}": torch.zeros(0, dtype=torch.uint8) for s in ("unary", "rem")}
        tensors[f"{name}::values"] = torch.zeros(0)
        masks[name] = ("first", 0, math.prod(shape))
    return {"format": "lotteryir-ticket", "version": 2, "order": ["pad", *pruned], "pruned": pruned}, tensors, masks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=crafted(), explicit=st.one_of(st.none(), st.tuples(st.integers(0, 1 << 24), st.integers(0, 32 * MiB))))
@example(case=None, explicit=None)  # the reported file
@example(case=_empty_rice([1 << 23]), explicit=None)  # within the entries' budget, not within the bytes'
@example(case=_empty_rice([1 << 22], [1 << 22], dtype="float32"), explicit=None)  # bytes summed over entries
def test_reading_a_crafted_ticket_stays_within_its_budget(tmp_path_factory, monkeypatch, case, explicit):
    from lotteryir.pruning import ticket_header as header_module

    # Small ceilings, so that what the budget lets through is cheap to allocate in a test.
    monkeypatch.setattr(header_module, "ELEMENT_CEILING", 1 << 25, raising=False)
    monkeypatch.setattr(header_module, "BYTE_CEILING", 32 * MiB, raising=False)
    path = tmp_path_factory.mktemp("crafted") / "t.safetensors"
    if case is None:
        _reported(path)
        header, masks = None, {}
    else:
        header, tensors, masks = case
        _write(path, header, tensors)
    size = path.stat().st_size
    if explicit is None:
        max_elements, max_bytes = header_module.default_budget(size)
        kwargs = {}
    else:
        max_elements, max_bytes = explicit
        kwargs = {"max_elements": max_elements, "max_bytes": max_bytes}
    assert max_bytes <= 32 * MiB
    try:
        with address_space(max_bytes + size + SLACK):
            state, mask, _ = read_ticket(path, **kwargs)
    except TicketError as e:
        assert str(path) in str(e)
        return
    except (MemoryError, RuntimeError) as e:  # an allocation beyond the budget was attempted
        pytest.fail(f"reading {header} asked for more than {max_bytes:,} bytes: {e}")
    assert header is not None
    assert sum(math.prod(e["shape"]) for e in header["pruned"].values()) <= max_elements
    for name, entry in header["pruned"].items():
        m = mask[name].reshape(-1)
        assert tuple(state[name].shape) == tuple(entry["shape"])
        kind, *rest = masks[name]
        if kind == "first":  # Rice codes of positions 0 .. count-1
            count, n = rest
            kept = int(count) if count is not None else n - entry["count"]
            assert int(m.sum()) == kept
            assert int(torch.count_nonzero(state[name])) == kept
        else:
            assert bool(m.all()) == (kind == "all") or m.numel() == 0


def test_a_legitimate_ticket_still_reads_within_its_budget(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {"a.weight": torch.randn(256, 128, 3, 3, generator=g), "b.weight": torch.randn(64, 64, generator=g)}
    mask = Mask({k: torch.rand(v.shape, generator=g) < d for (k, v), d in zip(state.items(), (0.01, 0.5))})
    state = {k: v * mask[k] for k, v in state.items()}
    path = tmp_path / "t.safetensors"
    save_compact(state, mask, path)
    from lotteryir.pruning import ticket_header as header_module

    _, max_bytes = header_module.default_budget(path.stat().st_size)
    with address_space(max_bytes + path.stat().st_size + SLACK):
        loaded, loaded_mask, _ = read_ticket(path)
    assert loaded_mask == mask and all(torch.equal(loaded[k], state[k]) for k in state)
    # A ticket at density 1e-3 of a 30M-weight network (about 150 KB) still fits the default budget.
    n = 30_000_000
    elements, _ = header_module.default_budget(150_000)
    assert elements >= n
