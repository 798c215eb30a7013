"""Image I/O: conversions to 3-channel float RGB, bad files, writing."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lotteryir.data import DataError, read_image, write_image
from lotteryir.data.degrade import jpeg_compress
from lotteryir.data.io import _to_channels, decode_image, encode_image, load_image, quiet_codec_warnings


def _rgb(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_png_round_trip_is_exact(tmp_path):
    image = torch.from_numpy(_rgb()).permute(2, 0, 1).float() / 255
    path = write_image(image, tmp_path / "out" / "x.png")
    back = read_image(path)
    assert back.dtype == torch.float32 and back.shape == (3, 12, 16)
    assert torch.equal(back, image)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temporary file left behind


def test_jpeg_write_and_quality(tmp_path):
    image = torch.rand(3, 32, 32)
    low = write_image(image, tmp_path / "low.jpg", quality=10).stat().st_size
    high = write_image(image, tmp_path / "high.jpeg", quality=95).stat().st_size
    assert low < high
    assert read_image(tmp_path / "low.jpg").shape == (3, 32, 32)


def test_write_rejects_unknown_extension_and_shape(tmp_path):
    with pytest.raises(DataError, match="unsupported extension"):
        write_image(torch.rand(3, 4, 4), tmp_path / "x.gif")
    with pytest.raises(DataError, match="3xHxW"):
        write_image(torch.rand(2, 4, 4), tmp_path / "x.png")


def test_grayscale_is_repeated(tmp_path):
    gray = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    Image.fromarray(gray).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (3, 12, 16)
    assert torch.equal(image[0], image[2]) and torch.equal(image[1], torch.from_numpy(gray).float() / 255)


def test_sixteen_bit_png_is_scaled(tmp_path):
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.shape == (3, 2, 2)
    assert torch.allclose(image[0], torch.from_numpy(values.astype(np.float32)) / 65535)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 0, 0)  # transparent black -> white
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black -> mid gray
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert image[:, 0, 1].tolist() == [1.0, 1.0, 1.0]
    assert torch.allclose(image[:, 1, 0], torch.full((3,), 127 / 255))


def test_gray_alpha_is_composited(tmp_path):
    la = np.zeros((2, 2, 2), dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    assert torch.equal(read_image(tmp_path / "la.png"), torch.ones(3, 2, 2))


def test_palette_png_uses_its_colours(tmp_path):
    rgb = _rgb(10, 10)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    expected = np.array(Image.open(tmp_path / "p.png").convert("RGB"))
    image = read_image(tmp_path / "p.png")
    assert torch.equal(image, torch.from_numpy(expected).permute(2, 0, 1).float() / 255)


def test_bmp_is_read(tmp_path):
    rgb = _rgb()
    Image.fromarray(rgb).save(tmp_path / "x.bmp")
    assert torch.equal(load_image(tmp_path / "x.bmp"), torch.from_numpy(rgb).permute(2, 0, 1))


def test_exif_orientation_is_applied(tmp_path):
    rgb = _rgb(8, 16)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif, quality=95)
    assert read_image(tmp_path / "r.jpg").shape == (3, 16, 8)


def test_zero_byte_image_names_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.png.*0 bytes"):
        read_image(tmp_path / "empty.png")


def test_corrupt_image_names_the_file(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff" + b"not a jpeg" * 20)
    with pytest.raises(DataError, match=r"cannot decode image .*bad\.jpg"):
        read_image(tmp_path / "bad.jpg")


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.png"):
        read_image(tmp_path / "nope.png")


# --- Pillow reads and writes what torchvision.io did (lotteryir <= 0.x decoded with it) ---------------------
# The reader moved to Pillow so that importing lotteryir.data does not import torchvision's models and
# torch._dynamo. Results made with the old reader must stay reproducible: same pixels, same JPEG bytes.


def _torchvision_reader(data: bytes, name: str) -> torch.Tensor:
    """The former decoder: torchvision.io with the modes lotteryir asked for, then the same conversions."""
    from torchvision.io import ImageReadMode, decode_image

    mode = ImageReadMode.UNCHANGED
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[25] == 3:  # palette PNG
        mode = ImageReadMode.RGB_ALPHA if b"tRNS" in data else ImageReadMode.RGB
    elif name.endswith(".jpg"):
        mode = ImageReadMode.RGB
    with quiet_codec_warnings():
        image = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode, apply_exif_orientation=True
        )
    return _to_channels(image[0] if image.dim() == 4 else image, Path(name), 3)


_MODES = {
    "jpg": ("L", "RGB", "CMYK"),
    "png": ("1", "L", "LA", "RGB", "RGBA", "P", "P+trns", "I;16"),
    "gif": ("P", "P+trns", "L"),
    "webp": ("RGB", "RGBA"),
}


@st.composite
def _encoded_images(draw: st.DrawFn) -> tuple[bytes, str]:
    fmt = draw(st.sampled_from(sorted(_MODES)))
    mode = draw(st.sampled_from(_MODES[fmt]))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    smooth = draw(st.booleans())  # photo-like (a gradient) or noise
    base = np.linspace(0, 255, h * w * 4).reshape(h, w, 4) if smooth else rng.integers(0, 256, (h, w, 4))
    rgba = Image.fromarray(base.astype(np.uint8), mode="RGBA")
    kwargs: dict = {}
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.uint16))
    elif mode.startswith("P"):
        image = rgba.convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=draw(st.integers(2, 64)))
        if mode == "P+trns":
            kwargs["transparency"] = draw(st.integers(0, 1))
    else:
        image = rgba.convert(mode)
    if fmt == "jpg":
        kwargs.update(quality=draw(st.integers(1, 100)), subsampling=draw(st.sampled_from([0, 1, 2])))
        kwargs["progressive"] = draw(st.booleans())
    if fmt == "webp":
        kwargs.update(lossless=draw(st.booleans()), quality=draw(st.integers(1, 100)))
    if fmt in ("jpg", "png", "webp"):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(1, 8))  # orientation
        kwargs["exif"] = exif
    buffer = io.BytesIO()
    image.save(buffer, format={"jpg": "JPEG"}.get(fmt, fmt.upper()), **kwargs)
    return buffer.getvalue(), f"image.{fmt}"


@settings(max_examples=60, deadline=None)
@given(_encoded_images())
def test_pillow_reader_matches_torchvision(encoded):
    data, name = encoded
    assert torch.equal(decode_image(data, name), _torchvision_reader(data, name))


@pytest.mark.parametrize("name", ["hubble_deep_field.jpg", "rocket.jpg", "camera.png", "horse.png", "logo.png"])
def test_pillow_reader_matches_torchvision_on_bundled_photos(name):
    path = Path(skimage.data.__file__).parent / name
    assert torch.equal(load_image(path), _torchvision_reader(path.read_bytes(), name))


def test_sixteen_bit_colour_png_keeps_its_sixteen_bits(tmp_path):
    """Pillow reduces 16-bit RGB PNGs to 8 bits; those go through torchvision.io, read in full."""
    values = np.random.default_rng(0).integers(0, 65536, (3, 5, 3)).astype(np.uint16)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    header = struct.pack(">IIBBBBB", 5, 3, 16, 2, 0, 0, 0)  # width, height, 16 bits, RGB

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    (tmp_path / "rgb16.png").write_bytes(png)
    image = load_image(tmp_path / "rgb16.png")
    assert image.dtype == torch.float32
    assert torch.equal(image, torch.from_numpy(values.astype(np.float32)).permute(2, 0, 1) / 65535)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 100), st.integers(0, 2**16), st.sampled_from([1, 3]))
def test_jpeg_bytes_and_degradation_match_torchvision(quality, seed, channels):
    from torchvision.io import decode_jpeg, encode_jpeg

    pixels = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (channels, 19, 27), dtype=np.uint8))
    with quiet_codec_warnings():
        expected = encode_jpeg(pixels, quality=quality).numpy().tobytes()
        decoded = decode_jpeg(torch.frombuffer(bytearray(expected), dtype=torch.uint8))
    assert encode_image(pixels, ".jpg", quality) == expected
    if channels == 3:
        assert torch.equal(jpeg_compress(pixels.float() / 255, quality), decoded.float() / 255)
