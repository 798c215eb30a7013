"""Issue 22.3: a ticket cannot switch its own checksums off.

Version 1 tickets (written only by lotteryir 0.1) carry no checksums, so they load only when the
caller asks (allow_unchecked=True, --allow-unchecked), and a file that says version 1 while
carrying version 2's checksum fields is a relabelled version 2 ticket: refused even then.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lotteryir import load_checkpoint, load_ticket, read_ticket, save_ticket
from lotteryir.cli import main
from lotteryir.data import write_image
from lotteryir.models import build_model
from lotteryir.pruning.ticket import TicketError

from .errors import one_error_line


def _meta(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata())


def _as_v1(v2: Path, out: Path, keep: tuple[str, ...] = ()) -> None:
    """``v2`` rewritten as lotteryir 0.1 wrote tickets: version 1, no checksum fields (except ``keep``)."""
    meta = _meta(v2)
    header = json.loads(meta["lotteryir"])
    header["version"] = 1
    if "crc32" not in keep:
        header.pop("crc32")
    raw = json.dumps(header)
    new = {"lotteryir": raw}
    if "lotteryir_crc32" in keep:
        new["lotteryir_crc32"] = str(zlib.crc32(raw.encode()))
    save_file(load_file(str(v2)), str(out), metadata=new)


def _flip_a_value(path: Path, out: Path) -> None:
    """Change one stored weight (a dense tensor's first byte): a different network, same header."""
    with safe_open(str(path), framework="pt") as f:
        dense = [f.get_tensor(k) for k in f.keys() if "::" not in k and f.get_slice(k).get_dtype() == "F32"]
    value = next(v for v in dense if v.numel() >= 16 and bool((v != 0).all()))  # bytes found only where it is
    data = path.read_bytes()
    at = data.index(value.numpy().tobytes())
    out.write_bytes(data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :])


@pytest.fixture(scope="module")
def tickets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("v1")
    torch.manual_seed(0)
    model = build_model("mirl", "tiny")
    with torch.no_grad():  # some exact zeros, so the ticket has a mask worth coding
        for p in model.parameters():
            if p.dim() > 1:
                p[torch.rand_like(p) < 0.7] = 0
    paths = {"v2": folder / "v2.safetensors", "v1": folder / "v1.safetensors"}
    save_ticket(model, paths["v2"])
    _as_v1(paths["v2"], paths["v1"])
    paths["v1_flipped"] = folder / "v1_flipped.safetensors"
    _flip_a_value(paths["v1"], paths["v1_flipped"])
    return paths


def test_a_damaged_v1_ticket_is_refused_without_the_flag(tickets, capsys):
    path = tickets["v1_flipped"]
    for read in (read_ticket, load_ticket, load_checkpoint):
        with pytest.raises(TicketError) as info:
            read(path)
        message = str(info.value)
        assert str(path) in message and "version 1" in message and "allow_unchecked=True" in message
        assert f"lotteryir export {path} -o new.safetensors" in message  # how to rewrite it as v2
    line = one_error_line(capsys, ["evaluate", str(path)], str(path), "--allow-unchecked", "lotteryir export")
    assert "version 1" in line


@pytest.mark.parametrize("keep", [("crc32", "lotteryir_crc32"), ("crc32",), ("lotteryir_crc32",)])
def test_a_relabelled_damaged_v2_ticket_is_refused_even_with_the_flag(tickets, tmp_path, keep):
    damaged = tmp_path / "damaged.safetensors"
    _flip_a_value(tickets["v2"], damaged)
    relabelled = tmp_path / "relabelled.safetensors"
    _as_v1(damaged, relabelled, keep=keep)
    for read in (read_ticket, load_ticket, load_checkpoint):
        with pytest.raises(TicketError, match="relabelled"):
            read(relabelled)
        with pytest.raises(TicketError, match="relabelled") as info:
            read(relabelled, allow_unchecked=True)
        assert str(relabelled) in str(info.value)


def test_a_genuine_v1_ticket_loads_with_the_flag_and_rewrites_as_v2(tickets, tmp_path, capsys):
    v1, v2 = tickets["v1"], tickets["v2"]
    state, mask, header = read_ticket(v1, allow_unchecked=True)
    want, want_mask, _ = read_ticket(v2)
    assert header["version"] == 1 and mask == want_mask and all(torch.equal(state[k], want[k]) for k in want)
    loaded = load_ticket(v1, allow_unchecked=True)
    assert loaded.name == "mirl" and loaded.mask == load_checkpoint(v2).mask
    assert load_checkpoint(v1, allow_unchecked=True).mask == loaded.mask
    image = tmp_path / "in.png"
    write_image(torch.rand(3, 16, 16), image)
    assert main(["restore", str(v1), str(image), "-o", str(tmp_path / "out"), "--allow-unchecked"]) == 0
    assert (tmp_path / "out" / "in.png").is_file()
    new = tmp_path / "new.safetensors"
    one_error_line(capsys, ["export", str(v1), "-o", str(new)], "version 1", "--allow-unchecked")
    assert not new.exists()
    assert main(["export", str(v1), "-o", str(new), "--allow-unchecked"]) == 0
    assert f"wrote {new}" in capsys.readouterr().out
    meta = _meta(new)
    header = json.loads(meta["lotteryir"])
    assert header["version"] == 2 and "crc32" in header and "lotteryir_crc32" in meta
    state, mask, _ = read_ticket(new)  # checked, no flag needed
    assert mask == want_mask and all(torch.equal(state[k], want[k]) for k in want)
    # The rewritten ticket is checked: a flipped value is now an error, not a different network.
    flipped = tmp_path / "new_flipped.safetensors"
    _flip_a_value(new, flipped)
    with pytest.raises(TicketError, match="checksum"):
        read_ticket(flipped)
