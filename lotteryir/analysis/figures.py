"""The stability figure: mean PSNR along the linear path between the two copies, one line per rewind step."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .._files import atomic_write


def write_stability_figure(report: Any, path: Path, title: str = "") -> None:
    """PSNR (mean over test sets) against alpha, one line per rewind step, the degraded input dashed.

    ``report`` is a :class:`~lotteryir.analysis.StabilityReport` (typed loosely: that module draws with this one).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.5), dpi=120)
    cmap = plt.get_cmap("viridis")
    ks = sorted(report.paths)
    for i, k in enumerate(ks):
        p = report.paths[k]
        color = cmap(i / max(len(ks) - 1, 1))
        label = f"k={k}: barrier {p.mean_barrier:.2f} dB"
        ax.plot(p.alphas, p.mean_psnr, marker="o", ms=3, lw=2, color=color, label=label)
    if math.isfinite(report.mean_input_psnr):
        ax.axhline(report.mean_input_psnr, color="tab:red", ls="--", lw=1.5, label="degraded input (mean)")
    stable = report.stable_step
    verdict = f"smallest stable k = {stable}" if stable is not None else "no k is stable"
    ax.set_xlabel("alpha: (1 - alpha) copy 1 + alpha copy 2")
    ax.set_ylabel("PSNR (dB), mean over test sets")
    density = f"density {report.density:.3g}"
    ax.set_title(
        f"Linear path between two copies {title} (round {report.round}, {density})\n{verdict} "
        f"(barrier <= {report.threshold:g} dB)".strip(),
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
