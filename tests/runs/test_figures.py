"""Each round's samples figure names its columns and rows, and its PSNRs are the images' own."""

from __future__ import annotations

import math

import torch
from torch import nn

from lotteryir.runs.figures import SAMPLE_COLUMNS, sample_rows, samples_figure, write_samples_figure


class _Grey(nn.Module):
    """A "restorer" that answers mid-grey, so the restored PSNR differs from the input's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, 0.5)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float((a.double() - b.double()).pow(2).mean()))


def _sets() -> dict[str, list[dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    clean = [torch.rand(3, 24, 32, generator=g) for _ in range(2)]
    noisy = [(c + 0.1 * torch.randn(c.shape, generator=g)).clamp(0, 1) for c in clean]
    return {
        "denoise_25/sample": [{"input": noisy[0], "target": clean[0]}],
        "derain/sample": [{"input": noisy[1], "target": clean[1]}],
    }


def test_samples_figure_labels_columns_rows_and_psnr():
    sets = _sets()
    fig = samples_figure(sample_rows(_Grey(), sets, side=16))
    axes = fig.axes
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes[:3]] == list(SAMPLE_COLUMNS) == ["degraded", "restored", "clean"]
    for r, (label, items) in enumerate(sets.items()):
        row = axes[3 * r : 3 * r + 3]
        assert row[0].get_ylabel() == label
        degraded, clean = items[0]["input"], items[0]["target"]
        assert row[0].get_xlabel() == f"PSNR {_psnr(degraded, clean):.2f} dB"
        assert row[1].get_xlabel() == f"PSNR {_psnr(torch.full_like(clean, 0.5), clean):.2f} dB"
        assert row[0].get_xlabel() != row[1].get_xlabel()


def test_write_samples_figure_writes_a_png(tmp_path):
    write_samples_figure(_Grey(), _sets(), tmp_path / "samples.png", side=16)
    assert (tmp_path / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
