"""stability's tables (barriers per network and k, per set; the late ticket against init and reinit) and figure."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from harness import INPUT, ci, col, nan, pm, pyplot, save_figure, table

EXPLAINED = (
    "Barrier: largest drop of PSNR below the endpoints' mean (dB); stable: barrier <= {t:g} dB. Mean ± std over "
    "seeds; `-` not finished yet. The barrier is never below half the gap between the two endpoints (the lower "
    "copy is itself below their mean), so the per-network tables give that half gap beside it: a barrier equal to "
    "it is two copies of different quality, not a dip between them."
)


def net(row: dict[str, Any]) -> str:
    return f"{row['density']:.3f}" + (" (dense)" if row["round"] == 0 else f" (round {row['round']})")


def reinit_source(report: dict[str, Any]) -> str:
    """Where each seed's random reinit comes from, for the table's caption."""
    cells = {s: r["reinit"] for s, r in report["results"].items() if "reinit" in r}
    here = sorted((s for s, c in cells.items() if c.get("trained")), key=int)
    reused = sorted((s for s, c in cells.items() if not c.get("trained")), key=int)
    reuse = report.get("reuse", {})
    parts = [f"trained here as the run's random_reinit control (seeds {', '.join(here)})"] if here else []
    if reused:
        parts.append(f"{reuse.get('summary', 'reused')} (seeds {', '.join(reused)})")
    if here and not reuse.get("reused") and "summary" in reuse:
        parts.append(f"lottery_tickets.json's: {reuse['summary']}")
    return "; ".join(parts) or "not finished yet"


def per_set(row: dict[str, Any], ks: list[int]) -> list[str]:
    """One network's table: per k, the barrier per set, its mean, half the endpoints' gap, the endpoints, the lowest."""
    first = next(iter(row["k"].values()))
    labels = list(first["barrier"])
    inputs = [f"{nan(first['input_psnr_per_set'][lab]):.2f}" for lab in labels]
    rows: list[list[Any]] = [["degraded input (path images)", "", *inputs, "", "", f"{first['input_psnr']:.2f}", ""]]
    for k in ks:
        if (x := row["k"].get(str(k))) is None:
            rows.append([k, "-", *["-"] * (len(labels) + 4)])
            continue
        cells = [pm(x[q], x["n"]) for q in ("mean_barrier", "half_gap", "endpoints", "lowest")]
        rows.append([k, x["steps"], *(pm(x["barrier"][lab], x["n"]) for lab in labels), *cells])
    head = ["k", "copies' steps", *map(col, labels), "mean", "half the endpoints' gap", "endpoints' PSNR", "lowest"]
    return table(head, rows)


def late_tables(report: dict[str, Any], late: dict[str, Any], a: argparse.Namespace) -> list[str]:
    """The late-rewound ticket beside the run's own round and random reinit, then their paired differences."""
    labels = ["mean", *(k for k in late["init"] if k != "mean")]
    per_seed = ", ".join(
        f"seed {s}: k={k}" + ("" if late["stable_per_seed"][s] else " (none stable: largest k)")
        for s, k in late["k_per_seed"].items()
    )
    out = [
        f"Retrained from the smallest stable k of this ticket ({per_seed}) as the run trains its rounds "
        f"(full {a.steps} steps, the round's data order), scored on the full test sets. "
        f"Random reinit: {reinit_source(report)}.",
        "",
    ]
    rows = [["degraded input", *(f"{late['input'][m]:.2f}" for m in labels)]]
    for name, key in (
        ("rewound to init (the run's round)", "init"),
        ("late-rewound", "late"),
        ("random reinit", "reinit"),
    ):
        rows += [[name, *(pm(late[key][m], late["n"]) for m in labels)]] if key in late else []
    out += [*table(["", *map(col, labels)], rows), "", "Paired over seeds: mean [95% t-interval] (dB).", ""]
    names = (("late − init", "late_minus_init"), ("init − reinit", "init_minus_reinit"))
    rows = [
        [n, *(ci(late[k][m]) for m in labels)] for n, k in (*names, ("late − reinit", "late_minus_reinit")) if k in late
    ]
    return out + table(["", *map(col, labels)], rows)


def markdown(report: dict[str, Any], a: argparse.Namespace) -> str:
    c, summary, ks = report["config"], report["summary"], a.rewind_steps
    path_imgs = "all" if c["path_images_per_set"] is None else c["path_images_per_set"]
    out = [
        f"## Is the ticket stable? mirl/{a.size}, sample recipe, {a.steps} steps/training, seeds {c['seeds']}",
        "",
        f"Linear mode connectivity: two copies from rewind step k (the run's round 0 replayed to k), trained "
        f"{a.steps} - k steps with two other data orders, scored at {a.points} points of the line between "
        f"them on {path_imgs} of the {c['test_images_per_set']} images of each test set. "
        + EXPLAINED.format(t=a.threshold),
        "",
        "### Barrier of the mean PSNR over the six sets (dB)",
        "",
    ]
    rows = []
    for row in summary["networks"]:
        cells = [pm(row["k"][str(k)]["mean_barrier"], row["k"][str(k)]["n"]) if str(k) in row["k"] else "-" for k in ks]
        per_seed = ", ".join("none" if v is None else str(v) for v in row["stable_per_seed"].values()) or "-"
        on_mean = "none" if row["stable_on_mean"] is None else row["stable_on_mean"]
        rows.append([net(row), *cells, per_seed, on_mean])
    out += table(["network (density)", *(f"k={k}" for k in ks), "smallest stable k per seed", "on the mean"], rows)
    for row in (row for row in summary["networks"] if row["k"]):
        out += ["", f"### {net(row)}: barrier per test set (dB), with the path's endpoints and lowest point", ""]
        out += per_set(row, ks)
    density = (1 - a.rate) ** a.late_round
    out += ["", f"### The ticket at {density:.3f}: late rewinding against rewinding to init", ""]
    if not (late := summary.get("late")):
        return "\n".join([*out, "Not finished yet."]) + "\n"
    return "\n".join([*out, *late_tables(report, late, a), "", f"**Verdict.** {late['verdict']}"]) + "\n"


def figure(report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
    """Mean PSNR along the path (averaged over seeds), one line per k, one panel per network."""
    plt, rows, n = pyplot(), report["summary"]["networks"], len(report["config"]["seeds"])
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(5.2 * max(1, len(rows)), 4.4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, row in zip(axes[0], rows):
        for i, k in enumerate(a.rewind_steps):
            if (x := row["k"].get(str(k))) is None:
                continue
            label = f"k={k}: barrier {x['mean_barrier']['mean']:.2f} dB"
            label += f" ({x['n']} seed{'s' if x['n'] > 1 else ''})" if x["n"] < n else ""
            color = cmap(i / max(len(a.rewind_steps) - 1, 1))
            ax.plot(x["alphas"], x["mean_path"], marker="o", ms=3, lw=2, color=color, label=label)
        inputs = [x["input_psnr"] for x in row["k"].values()]
        if inputs and math.isfinite(inputs[0]):
            ax.axhline(inputs[0], **{**INPUT, "ls": "--", "label": "degraded input (path images)"})
        stable = row["stable_on_mean"]
        said = ("(mean) " + ("none" if stable is None else str(stable))) if row["k"] else "-"
        ax.set_title(f"density {net(row)}: smallest stable k {said}", fontsize=9)
        ax.set_xlabel("alpha: (1 - alpha) copy 1 + alpha copy 2")
        ax.set_ylabel("PSNR (dB), mean over test sets and seeds")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    seeds = report["config"]["seeds"]
    title = (
        f"mirl/{a.size}, sample recipe, {a.steps} steps/training, seeds {seeds}; stable: barrier <= {a.threshold:g} dB"
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
