"""task_tickets' tables (mask overlaps, the init reference, PSNR on each task's sets, the verdict) and figure."""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Any

from harness import ci, pyplot, save_figure, table

INIT_REFERENCE = (
    "Tickets of one seed share their init. The reference for that: each ticket against the magnitude mask of its "
    "own init weights at the ticket's per-tensor counts (``rewind_magnitude_overlap``); beside it, the same ticket "
    "found with two seeds (two inits: no init shared)."
)


def route(a: argparse.Namespace) -> str:
    if a.method == "oneshot":
        return f"oneshot to density {a.target_density} (2 trainings per ticket)"
    return f"imp, {a.rounds} rounds at rate {a.rate:.3f} ({a.rounds + 1} trainings per ticket)"


def overlap_tables(s: dict[str, Any]) -> list[str]:
    """The IoU of every pair of tickets beside random masks', then each ticket against its own init."""
    names, m = s["tickets"], s["overlap"]

    def cell(x: str, y: str) -> str:
        if not (v := m.get(x, {}).get(y)):
            return "-"
        return f"{v['iou']['mean']:.3f} (random {v['random_iou']['mean']:.3f}, x{v['ratio']:.2f})"

    out = table(["ticket", *names], [[x, *(cell(x, y) for y in names)] for x in names])
    if not (init := s.get("init_overlap", {})):
        return out
    rows = []
    for t, x in init.items():
        r, c = x["random_iou"]["mean"], x.get("cross_seed")
        other = [f"{c['iou']['mean']:.3f} ({c['n']} pairs)", f"{c['random_iou']['mean']:.3f}"] if c else ["-", "-"]
        ratio = f"x{x['iou']['mean'] / r if r else math.nan:.2f}"
        rows.append([t, f"{x['iou']['mean']:.3f} ± {x['iou']['std']:.3f}", f"{r:.3f}", ratio, *other])
    head = ["ticket", "IoU with its init's magnitude mask (mean ± std over seeds)", "random", "ratio"]
    return [
        *out,
        "",
        INIT_REFERENCE,
        "",
        *table([*head, "the same ticket of two seeds (mean over pairs)", "random"], rows),
    ]


def markdown(report: dict[str, Any], a: argparse.Namespace) -> str:
    s, c = report["summary"], report["config"]
    out = [
        f"## Whose ticket is it? (density {s['density']:.3f})",
        "",
        f"mirl/{a.size}, sample recipe, {a.steps} steps per training, route: {route(a)}; seeds {c['seeds']}; "
        f"{c['test_images_per_set']} test images per set x {a.test_degradations} degradations.",
        "",
        "### Mask overlap (IoU over all pruned tensors, mean over seeds; random: same per-tensor densities)",
        "",
        *overlap_tables(s),
        "",
        "### PSNR on each task's own test sets (dB, mean ± std over seeds; difference paired, 95% t-interval)",
        "",
    ]
    rows = []
    for t, x in s["psnr"].items():
        mine = f"{x['task']['mean']:.2f} ± {x['task']['std']:.2f}" + (" (= input)" if x.get("returns_input") else "")
        allin = f"{x['all']['mean']:.2f} ± {x['all']['std']:.2f}"
        dense = ci(x["dense_diff"]) if x.get("dense_diff") else "-"
        served = "yes" if x["served"] else "no"
        rows.append([t, ", ".join(x["sets"]), f"{x['input']:.2f}", mine, allin, ci(x["diff"]), served, dense])
    head = ["task", "test sets", "degraded input", "task ticket", "all-in-one ticket", "task − all-in-one"]
    out += table([*head, "all-in-one serves it", "dense: task − all-in-one"], rows)
    if cut := [f"{t} {n}" for t, n in s["empty_tensors_max"].items() if n]:
        warning = "**Warning:** tensors pruned to nothing (the most over seeds; each one cuts the network): "
        out += ["", warning + ", ".join(cut)]
    if secs := s.get("seconds", []):
        cores = (report.get("provenance") or {}).get("cores") or report.get("environment", {}).get("cpu_count")
        out += [
            "",
            f"Time: {len(secs)} tickets, {s['seconds_total'] / 60:.0f} min of training and scoring in all (median "
            f"{statistics.median(secs) / 60:.1f} min a ticket, one thread each, {cores} CPU cores).",
        ]
    out += ["", f"**Verdict:** does one all-in-one ticket serve every task? {s['verdict']}"]
    return "\n".join(out) + "\n"


def figure(report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
    """Left: the IoU heatmap, each cell annotated with the random expectation; right: PSNR bars per task."""
    import numpy as np

    plt, s = pyplot(), report["summary"]
    names, m, init = s["tickets"], s["overlap"], s.get("init_overlap", {})
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2))
    rows = [*names, "own init\nmagnitudes"] if init else list(names)
    grid = np.full((len(rows), len(names)), np.nan)
    cells = [(len(names), j, init[b]) for j, b in enumerate(names) if b in init]  # the last row: own init
    cells += [(i, j, x) for i, p in enumerate(names) for j, q in enumerate(names) if (x := m.get(p, {}).get(q))]
    for i, j, x in cells:
        grid[i, j] = x["iou"]["mean"]
        text = f"{x['iou']['mean']:.2f}\n(rnd {x['random_iou']['mean']:.2f})"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if x["iou"]["mean"] < 0.6 else "black")
    if names:  # an empty grid (nothing finished yet) has no extent to draw
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(rows)), rows)
        fig.colorbar(im, ax=ax, fraction=0.046)
    else:
        ax.text(0.5, 0.5, "no ticket finished yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"mask IoU at density {s['density']:.3f} (mean over seeds; rnd: random masks)", fontsize=10)
    tasks = list(s["psnr"])
    xs = np.arange(len(tasks))
    # Gains over the degraded input, bars from 0: a bar's length is what the ticket adds (a bar of PSNR
    # would need a cut axis to show tenths of a dB, and a cut axis misstates the ratio of two bars).
    for k, (what, label, color) in enumerate((("task", "task ticket", "C0"), ("all", "all-in-one ticket", "C1"))):
        vals = [s["psnr"][t][what] for t in tasks]
        ys = [v["mean"] - s["psnr"][t]["input"] for v, t in zip(vals, tasks)]
        bx.bar(xs + (k - 0.5) * 0.36, ys, 0.36, yerr=[v["std"] for v in vals], capsize=3, label=label, color=color)
    bx.axhline(0.0, color="tab:red", lw=1, label="degraded input")
    bx.set_xticks(xs, tasks)
    bx.set_ylabel("gain over the degraded input on the task's own sets (dB)")
    bx.set_title("task ticket vs all-in-one ticket (std over seeds)", fontsize=10)
    bx.legend(fontsize=8)
    bx.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"mirl/{a.size}, sample recipe; {route(a)}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
