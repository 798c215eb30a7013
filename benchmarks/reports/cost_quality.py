"""cost_quality's tables (per density: the variants, per set, against IMP, the pick) and its figure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import DENSE, INPUT, ci, col, pm, pyplot, sample, save_figure, table


def notes(report: dict[str, Any], n: int) -> list[str]:
    """What the tables rest on: where IMP comes from and how its dense round compares."""
    out = [
        f"IMP: {report.get('reuse', {}).get('summary', 'trained here')}. `-` marks a variant not finished yet; "
        f"(k/{n}) one finished for k of the {n} seeds. Cost: optimizer steps and training minutes, "
        "evaluation not counted. Differences are the variant minus IMP, paired by seed: mean [95% t-interval].",
    ]
    if (check := report.get("dense_check")) is not None:
        out += ["", f"Round 0 of oneshot / lr-rewind against IMP's dense network: largest |ΔPSNR| {check:.2g} dB."]
        if check > sample.DENSE_TOLERANCE_DB and report.get("reuse", {}).get("reused"):
            out += [
                "",
                "**Warning:** the reused IMP is not this benchmark's training (its dense round 0 differs from the "
                "one trained here), so differences against it carry that offset; the next sitting trains IMP here.",
            ]
    if (stale := (report.get("stale_reuse") or {}).get("dense_check")) is not None:
        out += [
            "",
            f"An earlier sitting reused IMP from lottery_tickets.json; the dense round 0 trained here differed from "
            f"its dense network by up to {stale:.2f} dB on a set (another training), so IMP is trained here.",
        ]
    return out


def variant_rows(summary: dict[str, Any], row: dict[str, Any], methods: list[str], n: int) -> list[list[Any]]:
    """The density's main table: degraded input, dense, then each variant's means, cost and differences."""
    inp, dense, vs = summary.get("input"), summary.get("dense"), row["variants"]
    rows: list[list[Any]] = []
    if inp:
        rows.append(["degraded input", f"{inp['mean']:.2f}", f"{inp['denoise']:.2f}", 0, 0, 0, "", ""])
    if dense:
        means = [pm(dense["psnr"][k], dense["n"]) for k in ("mean", "denoise")]
        rows.append(["dense", *means, f"{dense['steps']['mean']:.0f}", "", 1, "", ""])
    for v in methods:
        if (x := vs.get(v)) is None:
            rows.append([v, *["-"] * 7])
            continue
        d = row["paired"].get(v)
        cost = [f"{x['steps']['mean']:.0f}", f"{x['train_seconds']['mean'] / 60:.1f}", f"{x['trainings']['mean']:.1f}"]
        diffs = [ci(d["mean"]), ci(d["denoise"])] if d else ["", ""]
        name = v + (f" ({x['n']}/{n})" if x["n"] < n else "")
        rows.append([name, pm(x["psnr"]["mean"], x["n"]), pm(x["psnr"]["denoise"], x["n"]), *cost, *diffs])
    return rows


def markdown(report: dict[str, Any], a: argparse.Namespace) -> str:
    c, summary, n, methods = report["config"], report["summary"], a.seeds, report["config"]["methods"]
    out = [
        f"## Cost against quality: mirl/{a.size}, sample recipe, {a.steps} steps/training, "
        f"seeds {c['seeds']}, {c.get('test_images_per_set', '?')} test images per set",
        "",
        *notes(report, n),
    ]
    inp, dense = summary.get("input"), summary.get("dense")
    head = ["variant", "mean PSNR", "denoise mean", "steps", "train min", "trainings", "Δ mean vs imp"]
    for row in summary["densities"]:
        vs, at = row["variants"], f"density {row['density']:.3f}"
        out += ["", f"### Density {row['density']:.3f} ({row['rounds']} imp rounds)", ""]
        out += table([*head, "Δ denoise vs imp"], variant_rows(summary, row, methods, n))
        empty = [v for v in methods if vs.get(v, {}).get("empty_tensors")]
        if cut := [f"{v} ({vs[v]['empty_tensors']} of {vs[v]['tensors']})" for v in empty]:
            out += [
                "",
                "**Warning:** tensors pruned to nothing (the network is cut there; its scores may be the input's): "
                + ", ".join(cut),
            ]
        labels = [k for k in (next(iter(vs.values()))["psnr"] if vs else []) if k not in ("mean", "denoise")]
        if not labels:
            continue
        rows = [["degraded input", *(f"{inp['psnr'][k]:.2f}" for k in labels)]] if inp else []
        rows += [["dense", *(pm(dense["psnr"][k], dense["n"]) for k in labels)]] if dense else []
        rows += [[v, *(pm(vs[v]["psnr"][k], vs[v]["n"]) if v in vs else "-" for k in labels)] for v in methods]
        out += ["", f"PSNR per test set (dB), mean ± std over seeds, {at}:", ""]
        out += table(["variant", *map(col, labels)], rows)
        paired = row["paired"]
        rows = [[v, *(ci(paired[v][k]) if v in paired else "-" for k in labels)] for v in methods if v != "imp"]
        out += ["", f"Minus IMP per test set (dB), paired: mean [95% t-interval], {at}:", ""]
        out += table(["variant", *map(col, labels)], rows)
        pick = row.get("verdict", {})
        out += [
            "",
            f"Cheapest method with IMP's quality at {at} (mean difference above -{pick.get('tolerance_db')} dB, "
            f"interval reaching 0, at most {pick.get('cost_share', 0):.0%} of IMP's steps, all seeds finished; "
            f"controls excluded): six-set mean: **{pick.get('mean') or 'none'}**; denoising mean: "
            f"**{pick.get('denoise') or 'none'}**.",
        ]
        out += ["", f"Who wins where ({at}; above/below IMP: the 95% interval excludes 0):", ""]
        for k, w in row["wins"].items():
            above, below = ", ".join(w["above_imp"]) or "none", ", ".join(w["below_imp"]) or "none"
            out.append(f"- {col(k)}: best {w['best']}; above imp: {above}; below imp: {below}")
    return "\n".join(out) + "\n"


def figure(report: dict[str, Any], a: argparse.Namespace, path: Path, variants: list[str]) -> None:
    """PSNR against total training steps (log x): the six-set mean and the denoising mean, per density."""
    plt, summary = pyplot(), report["summary"]
    rows = summary["densities"]
    fig, axes = plt.subplots(2, max(1, len(rows)), figsize=(6.2 * max(1, len(rows)), 8.4), squeeze=False)
    colors, markers = dict(zip(variants, (f"C{i}" for i in range(10)))), dict(zip(variants, "os^vDP<>X"))
    for j, row in enumerate(rows):
        for i, (k, what) in enumerate((("mean", "mean PSNR over the six sets"), ("denoise", "denoising sets' mean"))):
            ax = axes[i][j]
            if "dense" in summary:
                ax.axhline(summary["dense"]["psnr"][k]["mean"], **DENSE)
            if "input" in summary:
                ax.axhline(summary["input"][k], **INPUT)
            for v, x in row["variants"].items():
                err = {"xerr": [x["steps"]["std"]], "yerr": [x["psnr"][k]["std"]]} if x["n"] > 1 else {}
                label = v + (f" ({x['n']} seed{'s' if x['n'] > 1 else ''})" if x["n"] < a.seeds else "")
                style = {"color": colors[v], "marker": markers[v], "ls": "none", "capsize": 3, "label": label}
                ax.errorbar([x["steps"]["mean"]], [x["psnr"][k]["mean"]], **err, **style)
            ax.set_xscale("log")
            ax.set_xlabel("total optimizer steps (log)")
            ax.set_ylabel(f"{what} (dB)")
            ax.set_title(f"density {row['density']:.3f}", fontsize=10)
            ax.grid(True, alpha=0.3, which="both")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    fig.suptitle(f"mirl/{a.size}, sample recipe, {a.steps} steps/training; error bars: std over seeds", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
