"""What people look at: the lottery-ticket figure and per-round sample strips."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .._files import atomic_write
from ..engine import psnr, restore_image

CONTROL_STYLES = {"random_reinit": ("random reinit", "tab:red"), "random_prune": ("random prune", "tab:purple")}


def _task_of(label: str) -> str:
    return label.split("/", 1)[0]


def write_report_figure(
    history: Sequence[Mapping[str, Any]], path: Path, title: str = "", *, overwrite: bool = True
) -> None:
    """PSNR per task and the all-task mean against remaining weights (log axis), with controls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = sorted(history, key=lambda h: h["round"])
    if not rounds:
        return
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    x = [h["density"] for h in rounds]
    labels = sorted({label for h in rounds for label in h.get("eval", {})})
    cmap = plt.get_cmap("tab10")
    for i, label in enumerate(labels):
        y = [h["eval"].get(label, {}).get("psnr", math.nan) for h in rounds]
        ax.plot(x, y, marker=".", lw=1, alpha=0.6, color=cmap(i % 10), label=label)
        reference = rounds[-1]["eval"].get(label, {}).get("input_psnr")
        if reference is not None:  # each set's degraded input, faint, in the set's colour
            ax.axhline(reference, color=cmap(i % 10), ls=(0, (1, 3)), lw=0.8, alpha=0.6)
    ax.plot(
        x, [h.get("mean_psnr", math.nan) for h in rounds], marker="o", lw=2.5, color="black", label="IMP ticket (mean)"
    )
    reference = rounds[-1].get("mean_input_psnr")
    if reference is not None:
        ax.axhline(reference, color="tab:red", ls="--", lw=1.5, label="degraded input (mean)")
    dense = rounds[0] if rounds[0]["round"] == 0 else None
    if dense is not None and dense.get("mean_psnr") is not None:
        ax.axhline(dense["mean_psnr"], color="gray", ls=":", lw=1.5, label="dense (mean)")
    for kind, (name, color) in CONTROL_STYLES.items():
        pts = [(h["density"], h["controls"][kind]["mean_psnr"]) for h in rounds if kind in h.get("controls", {})]
        if pts:
            ax.plot(*zip(*pts), marker="s", ls="--", lw=2, color=color, label=f"{name} (mean)")
    ax.set_xscale("log")
    ax.invert_xaxis()  # sparser to the right, as lottery-ticket figures read
    ax.set_xlabel("fraction of prunable weights remaining (log)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"Lottery tickets {title}".strip())
    ticks = [d for d in x]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{d:.3g}" for d in ticks], rotation=45, fontsize=7)
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    _savefig(fig, path, overwrite)
    plt.close(fig)


def _savefig(fig, path: Path, overwrite: bool = True) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), overwrite=overwrite)


def _thumb(img: torch.Tensor, side: int) -> torch.Tensor:
    """Center-crop to a square and resize to ``side``."""
    _, h, w = img.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = img[:, top : top + s, left : left + s].unsqueeze(0)
    return F.interpolate(crop, size=(side, side), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


SAMPLE_COLUMNS = ("degraded", "restored", "clean")


@torch.no_grad()
def sample_rows(
    model: torch.nn.Module,
    test_sets: Mapping[str, Dataset],
    per_task: int = 1,
    side: int = 128,
    device: torch.device | str | None = None,
) -> list[dict[str, Any]]:
    """A few test images per set, restored: their thumbnails (degraded, restored, clean) and both PSNRs.

    The PSNRs are of the whole image (before the thumbnail's crop), the input's and the restoration's.
    """
    rows = []
    for label, dataset in test_sets.items():
        for i in range(min(per_task, len(dataset))):  # type: ignore[arg-type]
            item = dataset[i]
            degraded, clean = item["input"].cpu(), item["target"].cpu()
            restored = restore_image(model, item["input"], device=device).cpu().clamp(0, 1)
            rows.append(
                {
                    "label": label,
                    "input_psnr": float(psnr(degraded.unsqueeze(0), clean.unsqueeze(0))[0]),
                    "psnr": float(psnr(restored.unsqueeze(0), clean.unsqueeze(0))[0]),
                    "images": [_thumb(t, side) for t in (degraded, restored, clean)],
                }
            )
    return rows


def samples_figure(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A matplotlib figure of ``sample_rows``: columns degraded | restored | clean, one row per test image.

    Each row is named by its test set, and the degraded and restored images carry their PSNR to the clean one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(6.6, 2.2 * len(rows) + 0.4), dpi=100, squeeze=False)
    for r, row in enumerate(rows):
        notes = (f"PSNR {row['input_psnr']:.2f} dB", f"PSNR {row['psnr']:.2f} dB", "reference")
        for c, (img, note) in enumerate(zip(row["images"], notes)):
            ax = axes[r][c]
            ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(note, fontsize=8)
            if r == 0:
                ax.set_title(SAMPLE_COLUMNS[c], fontsize=10)
        axes[r][0].set_ylabel(row["label"], fontsize=9)
    fig.tight_layout()
    return fig


def write_samples_figure(
    model: torch.nn.Module,
    test_sets: Mapping[str, Dataset],
    path: Path,
    per_task: int = 1,
    side: int = 128,
    device: torch.device | str | None = None,
) -> None:
    """For a few test images per set: degraded | restored | clean, one labelled row each, as a PNG."""
    import matplotlib.pyplot as plt

    rows = sample_rows(model, test_sets, per_task=per_task, side=side, device=device)
    if not rows:
        return
    fig = samples_figure(rows)
    _savefig(fig, path)
    plt.close(fig)
