"""5. Hostile and damaged files: crafted and corrupted tickets, non-finite weights, pickles."""

from __future__ import annotations

import builtins
import json
import os
import zlib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import lotteryir.pruning.ticket as ticket_module
from lotteryir import load_ticket, read_ticket, save_ticket
from lotteryir.checkpoints import NonFiniteWeightsError
from lotteryir.cli import main
from lotteryir.data import write_image
from lotteryir.models import build_model
from lotteryir.pruning import Mask
from lotteryir.pruning.ticket import TicketError, load_compact, save_compact

from .errors import one_error_line

SAMPLE = ["--data-path", "max_images=1", "--tasks", "denoise_25"]


def _rewrite(path: Path, header: dict, tensors: dict | None = None, header_crc: bool = True) -> None:
    """Save ``tensors`` (default: the file's own) under ``header``, as someone crafting a ticket would.

    A version 2 header gets valid checksums: the reader must not rely on them alone.
    """
    tensors = tensors if tensors is not None else load_file(str(path))
    if header.get("version") == 2:
        keys = ticket_module._stored_keys(header["order"], header["pruned"])
        header["crc32"] = ticket_module._pack_crcs([ticket_module._crc(tensors[k]) for k in keys if k in tensors])
    raw = json.dumps(header)
    meta = {"lotteryir": raw}
    if header_crc:
        meta["lotteryir_crc32"] = str(zlib.crc32(raw.encode()))
    save_file(tensors, str(path), metadata=meta)


def _header(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["lotteryir"])


@pytest.fixture(scope="module")
def small_ticket(tmp_path_factory) -> tuple[Path, dict, Mask]:
    """A ticket of a small network with a Rice-coded, a bitmap-coded and a dense tensor."""
    g = torch.Generator().manual_seed(0)
    state = {
        "a.weight": torch.randn(16, 8, 3, 3, generator=g),
        "b.weight": torch.randn(32, 16, generator=g),
        "b.bias": torch.randn(32, generator=g),
    }
    mask = Mask(
        {"a.weight": torch.rand(16, 8, 3, 3, generator=g) < 0.1, "b.weight": torch.rand(32, 16, generator=g) < 0.5}
    )
    state = {k: v * mask[k] if k in mask else v for k, v in state.items()}
    path = tmp_path_factory.mktemp("ticket") / "small.safetensors"
    save_compact(state, mask, path, metadata={"model": "mine"})
    assert {e["coding"] for e in _header(path)["pruned"].values()} == {"rice", "bitmap"}
    return path, state, mask


def test_a_crafted_header_is_refused_before_anything_is_allocated(tmp_path, monkeypatch, capsys):
    # The reported case: a few hundred bytes declaring a 250M-entry tensor (checksums all valid).
    path = tmp_path / "crafted.safetensors"
    streams = {
        "w::unary": torch.zeros(1, dtype=torch.uint8),
        "w::rem": torch.zeros(3, dtype=torch.uint8),
        "w::values": torch.ones(1),
    }
    header = {
        "format": "lotteryir-ticket",
        "version": 2,
        "order": ["w"],
        "model": "mirl",
        "size": "tiny",
        "pruned": {
            "w": {
                "shape": [250_000_000],
                "dtype": "float32",
                "coding": "rice",
                "k": 20,
                "positions_of": "kept",
                "count": 1,
            }
        },
    }
    _rewrite(path, header, streams)
    assert path.stat().st_size < 1000

    def no_data(*args, **kwargs):
        raise AssertionError("tensor data was read before the header was checked")

    real_open = ticket_module.safe_open

    class HeaderOnly:  # the reader may look at the header, never at tensor data
        def __init__(self, *a, **k):
            self._f = real_open(*a, **k)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def __getattr__(self, name):
            return no_data if name == "get_tensor" else getattr(self._f, name)

    monkeypatch.setattr(ticket_module, "safe_open", HeaderOnly)
    with pytest.raises(TicketError, match="declares 250,000,000 pruned weights"):
        read_ticket(path)
    with pytest.raises(ValueError, match="crafted.safetensors"):
        load_ticket(path)  # against the network it names: the keys and shapes do not fit
    one_error_line(capsys, ["evaluate", str(path), *SAMPLE], "crafted.safetensors")
    header["pruned"]["w"]["shape"] = [2**40]
    _rewrite(path, header, streams)
    with pytest.raises(TicketError, match="more than the limit"):
        read_ticket(path)


def test_a_header_that_disagrees_with_the_model_is_refused_before_decoding(tmp_path):
    path = tmp_path / "t.safetensors"
    save_ticket(build_model("mirl", "tiny"), path)
    header = _header(path)
    # Self-consistent (same number of entries), but not the network's shape.
    name = next(n for n, e in header["pruned"].items() if e["shape"][0] != e["shape"][1])
    header["pruned"][name]["shape"] = header["pruned"][name]["shape"][::-1]
    _rewrite(path, header)
    with pytest.raises(ValueError, match=f"weights do not match mirl/tiny.*wrong shape: {name}"):
        load_ticket(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0.0, 1.0, exclude_max=True), flip=st.integers(1, 255))
def test_one_flipped_byte_is_detected_or_harmless(small_ticket, tmp_path, where, flip):
    path, state, mask = small_ticket
    data = bytearray(path.read_bytes())
    data[int(where * len(data))] ^= flip
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(data))
    try:
        loaded, loaded_mask, _ = load_compact(damaged)
    except TicketError as e:
        assert "damaged.safetensors" in str(e)
        return
    assert loaded_mask == mask and loaded.keys() == state.keys()  # never silently different
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_a_flipped_mask_byte_is_a_clear_error(small_ticket, tmp_path, capsys):
    # The reported case: one byte of a mask stream moved 26 of 144 mask bits and loaded silently.
    path, _, _ = small_ticket
    with safe_open(str(path), framework="pt") as f:
        stream = f.get_tensor("a.weight::unary")
    data = path.read_bytes()
    at = data.index(stream.numpy().tobytes())
    damaged = tmp_path / "flipped.safetensors"
    damaged.write_bytes(data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :])
    with pytest.raises(TicketError, match="checksum of a.weight::unary does not match"):
        load_compact(damaged)


def test_tickets_without_checksums_still_load(small_ticket, tmp_path):
    path, state, mask = small_ticket
    header = _header(path)
    header.pop("crc32")
    header["version"] = 1  # as lotteryir wrote tickets before the checksums
    old = tmp_path / "v1.safetensors"
    _rewrite(old, header, load_file(str(path)), header_crc=False)
    loaded, loaded_mask, _ = load_compact(old, allow_unchecked=True)  # issue 22.3: only when asked
    assert loaded_mask == mask and all(torch.equal(loaded[k], state[k]) for k in state)
    # A current ticket must carry its checksums: dropping them is damage, not an old file.
    raw = json.dumps({**header, "version": 2})
    save_file(
        load_file(str(path)), str(old), metadata={"lotteryir": raw, "lotteryir_crc32": str(zlib.crc32(raw.encode()))}
    )
    with pytest.raises(TicketError, match="checksums are missing"):
        load_compact(old)


def test_an_unreadable_ticket_says_so(tmp_path, monkeypatch, capsys):
    path = tmp_path / "t.safetensors"
    save_ticket(build_model("mirl", "tiny"), path)
    if os.geteuid() == 0:  # permissions do not stop root: refuse the read the way the OS would
        real_open = builtins.open

        def guarded(file, *args, **kwargs):
            if Path(str(file)) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)
    else:
        path.chmod(0)
    one_error_line(capsys, ["evaluate", str(path)], f"cannot read {path}: Permission denied")


@pytest.fixture
def nan_checkpoint(tmp_path) -> Path:
    model = build_model("mirl", "tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    torch.save(model.state_dict(), tmp_path / "nan.pt")
    return tmp_path / "nan.pt"


def test_non_finite_weights_are_refused_unless_allowed(nan_checkpoint, tmp_path, capsys):
    image = tmp_path / "in.png"
    write_image(torch.rand(3, 16, 16), image)
    out = tmp_path / "out"
    one_error_line(capsys, ["restore", str(nan_checkpoint), str(image), "-o", str(out)], "NaN", "--allow-nonfinite")
    one_error_line(capsys, ["evaluate", str(nan_checkpoint), *SAMPLE], "nan.pt", "--allow-nonfinite")
    assert not out.exists()
    ticket = tmp_path / "nan.safetensors"
    save_ticket(build_model("mirl", "tiny"), ticket)
    state = load_file(str(ticket))
    name = next(k for k in state if not k.endswith(("::unary", "::rem", "::bits")) and state[k].is_floating_point())
    state[name] = torch.full_like(state[name], float("inf"))
    _rewrite(ticket, _header(ticket), state)
    with pytest.raises(NonFiniteWeightsError, match=name.split("::")[0].replace(".", r"\.")):
        load_ticket(ticket)
    assert main(["restore", str(nan_checkpoint), str(image), "-o", str(out), "--allow-nonfinite"]) == 0


def test_json_never_holds_nan(nan_checkpoint, capsys):
    assert main(["evaluate", str(nan_checkpoint), *SAMPLE, "--json", "--allow-nonfinite"]) == 0
    text = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"{constant} in JSON output")

    payload = json.loads(text, parse_constant=refuse)
    assert payload["mean_psnr"] is None and payload["sets"]["denoise_25/sample"]["psnr"] is None


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickles_are_refused_without_suggesting_unsafe_loading(tmp_path, capsys):
    evil, noise = tmp_path / "evil.pt", tmp_path / "noise.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": Payload()}, evil)
    noise.write_bytes(os.urandom(4096))
    for path, expect in ((evil, "needs the Python object"), (noise, "not a PyTorch or safetensors checkpoint")):
        line = one_error_line(capsys, ["evaluate", str(path)], path.name, expect, "nothing in it was executed")
        assert "weights_only=False" not in line and "never run" not in capsys.readouterr().out
    one_error_line(capsys, ["evaluate", str(evil)], "add_safe_globals", "safetensors")
