"""Images read with a network's channels: grayscale files as they are, colour files as their BT.601 luma."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lotteryir.data import DataError, get_recipe, read_image
from lotteryir.data.degrade import add_gaussian_noise, add_haze, add_rain, add_web_degradation, jpeg_compress
from lotteryir.data.io import load_image, to_grayscale


def _rgb(pixels: list[tuple[int, int, int]]) -> torch.Tensor:
    return torch.tensor(pixels, dtype=torch.uint8).T.reshape(3, 1, len(pixels))


def test_luma_of_the_primaries_and_of_gray_is_bt601_rounded_to_8_bits():
    # 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1, and (10, 200, 30): 2.99 + 117.4 + 3.42 = 123.81.
    got = to_grayscale(_rgb([(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 200, 30), (255, 255, 255)]))
    assert got.dtype == torch.uint8 and got.flatten().tolist() == [76, 150, 29, 124, 255]
    levels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_grayscale(levels.view(1, 1, 256).expand(3, 1, 256))[0, 0], levels)  # gray stays gray
    as_float = to_grayscale(_rgb([(255, 0, 0)]).float() / 255)
    assert as_float.item() == pytest.approx(19595 / 65536)  # float sources keep the unrounded sum


def test_luma_equals_pillows_convert_L_on_every_red_green_pair():
    ramp = np.arange(256, dtype=np.uint8)
    red, green = np.meshgrid(ramp, ramp, indexing="ij")
    for blue in (0, 37, 128, 255):
        rgb = np.stack([red, green, np.full_like(red, blue)], axis=-1)
        expected = np.asarray(Image.fromarray(rgb).convert("L"))
        got = to_grayscale(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())[0].numpy()
        assert np.array_equal(got, expected), blue


def test_files_are_read_with_the_channels_asked_for(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    colour = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(colour).save(tmp_path / "colour.png")
    Image.fromarray(np.dstack([colour, np.full((20, 24), 255, np.uint8)])).save(tmp_path / "opaque.png")

    assert torch.equal(load_image(tmp_path / "gray.png", channels=1)[0], torch.from_numpy(gray))  # as it is
    assert load_image(tmp_path / "gray.png").shape == (3, 20, 24)  # repeated for an RGB network
    luma = np.array(Image.fromarray(colour).convert("L"))
    assert torch.equal(load_image(tmp_path / "colour.png", channels=1)[0], torch.from_numpy(luma))
    assert torch.equal(load_image(tmp_path / "opaque.png", channels=1)[0], torch.from_numpy(luma))  # alpha first
    assert read_image(tmp_path / "colour.png", channels=1).shape == (1, 20, 24)
    with pytest.raises(DataError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels, not 2"):
        read_image(tmp_path / "gray.png", channels=2)


def test_every_degradation_works_on_one_channel():
    clean = torch.linspace(0.1, 0.9, 48 * 48).reshape(1, 48, 48)
    g = torch.Generator().manual_seed
    for name, out in {
        "noise": add_gaussian_noise(clean, 25, g(0)),
        "rain": add_rain(clean, g(1), density=0.02),
        "haze": add_haze(clean, g(2)),
        "jpeg": jpeg_compress(clean, 20),
        "web": add_web_degradation(clean, g(3)),
    }.items():
        assert out.shape == (1, 48, 48), name
        assert (out - clean).abs().max() > 0.01, name  # it degraded something


def test_gray_noise_is_drawn_once_per_pixel_at_the_full_sigma():
    # Averaging noisy RGB channels would leave sigma/sqrt(3) (14.4 for 25); one draw per gray pixel keeps 25.
    clean = torch.full((1, 256, 256), 128 / 255)
    noise = (add_gaussian_noise(clean, 25, torch.Generator().manual_seed(0), quantize=False) - clean) * 255
    assert noise.std().item() == pytest.approx(25, rel=0.02)


def test_the_sample_recipe_reads_its_photographs_as_gray_for_a_one_channel_network():
    rgb = get_recipe("sample", max_images=1, test_max_side=32)
    gray = get_recipe("sample", max_images=1, test_max_side=32, channels=1)
    target_rgb = rgb.test_sets(["derain"])["derain/sample"][0]["target"]
    item = gray.test_sets(["derain"])["derain/sample"][0]
    assert item["input"].shape == item["target"].shape == (1, *target_rgb.shape[-2:])
    expected = to_grayscale((target_rgb * 255).round().to(torch.uint8)).float() / 255
    assert torch.equal(item["target"], expected)
    patch = gray.train_dataset(patch_size=16, tasks=["denoise_25"])[0]
    assert patch["input"].shape == patch["target"].shape == (1, 16, 16)
