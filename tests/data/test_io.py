"""Image I/O: conversions to 3-channel float RGB, bad files, writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lotteryir.data import DataError, read_image, write_image
from lotteryir.data.io import load_image


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
