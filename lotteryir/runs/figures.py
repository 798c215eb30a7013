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
from ..data import write_image
from ..engine import restore_image

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


@torch.no_grad()
def write_samples_figure(
    model: torch.nn.Module,
    test_sets: Mapping[str, Dataset],
    path: Path,
    per_task: int = 1,
    side: int = 128,
    device: torch.device | str | None = None,
) -> None:
    """For a few test images per task: degraded | restored | clean, one row each."""
    rows = []
    for _label, dataset in test_sets.items():
        for i in range(min(per_task, len(dataset))):  # type: ignore[arg-type]
            item = dataset[i]
            restored = restore_image(model, item["input"], device=device).cpu()
            rows.append(torch.cat([_thumb(t.cpu(), side) for t in (item["input"], restored, item["target"])], dim=2))
    if not rows:
        return
    pad = torch.ones(3, 4, rows[0].shape[2])
    grid = torch.cat([torch.cat([r, pad], dim=1) for r in rows], dim=1)
    write_image(grid, path)
