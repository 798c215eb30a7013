"""lottery_tickets' tables (means, paired differences, per set, against each control, the verdict) and
figure; and --curve's table and figure (dense quality against its steps on the validation split)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import DENSE, INPUT, SHORT, ci, col, pm, pyplot, save_figure, table

CONTROLS = ("random_reinit", "random_prune")
STYLES = {
    "imp_init": ("tab:blue", "o", "IMP ticket, rewind to init"),
    "imp_step": ("tab:green", "s", "IMP ticket, rewind to step K"),
    "random_reinit": ("tab:orange", "^", "random reinit (ticket's mask)"),
    "random_prune": ("tab:red", "v", "random pruning (ticket's layer densities)"),
}


def variants(config: dict[str, Any]) -> list[str]:
    """The variants a configuration trains, in the tables' order."""
    return ["imp_init", *CONTROLS] + (["imp_step"] if config.get("late_rewind") is not None else [])


def verdict_lines(v: dict[str, Any]) -> list[str]:
    t1, t2 = v["ticket_vs_dense"], v["ticket_vs_controls"]
    out = ["### Verdict", ""]
    if t1["status"] == "not measured":
        out.append(f"- {t1['target']}: not measured")
    else:
        out.append(f"- {t1['target']}: **{t1['status'].upper()}**, difference {ci(t1['difference'])} dB")
    if t2["status"] == "not measured":
        out.append(f"- {t2['target']}: not measured")
    else:
        missed = f"{t2['failed']} of {len(t2['checks'])} comparisons miss"
        out.append(f"- {t2['target']}: **{t2['status'].upper()}** ({missed})")
        for c in t2["checks"]:
            mark = "ok" if c["pass"] else "MISS"
            out.append(f"  - {c['density']:.3f} vs {c['control']}: {ci(c['difference'])} dB ({mark})")
    holds = "; ".join(
        f"{SHORT.get(l.split('/')[0], l)}: " + (", ".join(f"{d:.3f}" for d in ds) or "none")
        for l, ds in v["sets_where_ticket_beats_both_controls"].items()
    )
    return [*out, "- test sets where imp_init beats both controls with the 95% interval above 0, by density: " + holds]


def markdown(report: dict[str, Any], a: argparse.Namespace) -> str:
    summary, c, vs = report["summary"], report["config"], variants(report["config"])
    n = len(report.get("runs", []))
    out = [
        f"## Lottery tickets: mirl/{a.size}, sample recipe, {a.steps} steps/training, {a.rounds} x {a.rate:.0%} "
        f"global, seeds {c['seeds']}, {c['test_images_per_set']} test images per set",
        "",
    ]
    if not summary["rounds"]:
        return "\n".join([*out, "Not finished yet."]) + "\n"
    inp, labels, rounds = summary["input"], list(summary["input"]["psnr"]), summary["rounds"]
    rows = [["degraded input", *(f"{inp['mean_psnr']:.2f}" for _ in vs)]]
    for row in rounds:
        if row["round"] == 0:
            rows.append(["1.000 (dense)", *(pm(row["variants"]["dense"]["mean_psnr"], n) for _ in vs)])
        else:
            cells = [pm(row["variants"][x]["mean_psnr"], n) if x in row["variants"] else "-" for x in vs]
            rows.append([f"{row['density']:.3f}", *cells])
    out += [
        f"### Mean PSNR over the six test sets (dB), mean ± std over {n} seed(s)",
        "",
        *table(["density", *vs], rows),
    ]
    comps = list(rounds[-1]["paired"])
    rows = [
        [f"{r['density']:.3f}", *(ci(r["paired"][k]["mean"]) if k in r["paired"] else "-" for k in comps)]
        for r in rounds[1:]
    ]
    out += ["", "### Paired differences of the mean PSNR (dB): mean [95% t-interval] over seeds", ""]
    out += table(["density", *comps], rows)
    for variant in vs:
        rows = [["degraded input", *(f"{inp['psnr'][l]:.2f}" for l in labels), f"{inp['mean_psnr']:.2f}"]]
        for row in rounds:
            if (x := row["variants"].get("dense" if row["round"] == 0 else variant)) is not None:
                name = f"{row['density']:.3f}" + (" (dense)" if row["round"] == 0 else "")
                rows.append([name, *(pm(x["psnr"][l], n) for l in labels), pm(x["mean_psnr"], n)])
        out += ["", f"### {variant}: PSNR per test set (dB), mean ± std over seeds", ""]
        out += table(["density", *map(col, labels), "mean"], rows)
    out += ["", "### imp_init minus each control, per test set (dB): mean [95% t-interval]", ""]
    for c in CONTROLS:
        key = f"imp_init - {c}"
        pairs = [r for r in rounds[1:] if key in r["paired"]]
        rows = [[f"{r['density']:.3f}", *(ci(r["paired"][key]["sets"][l]) for l in labels)] for r in pairs]
        out += [f"**vs {c}**", "", *table(["density", *map(col, labels)], rows), ""]
    return "\n".join([*out, *verdict_lines(report["verdict"])]) + "\n"


def figure(report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
    """Mean PSNR and SSIM against density (log, right to left) per variant, beside dense and the input."""
    summary, n = report["summary"], len(report.get("runs", []))
    if not summary["rounds"]:
        return
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6))
    rows = [r for r in summary["rounds"] if r["round"] > 0]
    for ax, metric in zip(axes, ("mean_psnr", "mean_ssim")):
        ax.axhline(summary["rounds"][0]["variants"]["dense"][metric]["mean"], **DENSE)
        ax.axhline(summary["input"][metric], **INPUT)
        for v in variants(report["config"]):
            if pts := [(r["density"], r["variants"][v][metric]) for r in rows if v in r["variants"]]:
                color, marker, label = STYLES[v]
                ys, err = [s["mean"] for _, s in pts], [s["std"] for _, s in pts] if n > 1 else None
                ax.errorbar([x for x, _ in pts], ys, yerr=err, color=color, marker=marker, label=label, capsize=3)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xticks([r["density"] for r in rows])
        ax.set_xticklabels([f"{r['density']:.3g}" for r in rows])
        ax.minorticks_off()
        ax.set_xlabel("remaining fraction of prunable weights (log)")
        ax.set_ylabel("mean PSNR over test sets (dB)" if metric == "mean_psnr" else "mean SSIM over test sets")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    title = f"mirl/{a.size}, sample recipe, {a.steps} steps/training, seeds {report['config']['seeds']}"
    fig.suptitle(title + (f"; error bars: std over {n} seeds" if n > 1 else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def curve_markdown(report: dict[str, Any], a: argparse.Namespace) -> str:
    rows = report.get("rows", [])
    head = f"## Dense mirl/{a.size} against its steps: PSNR gain over the input on the validation split (dB)"
    tasks = list(rows[0]["gains"]) if rows else []
    body = [
        [r["steps"], f"{r['mean_gain']:+.2f}", *(f"{r['gains'][t]:+.2f}" for t in tasks), f"{r['train_loss']:.4f}"]
        + [f"{r['seconds']:.0f}"]
        for r in rows
    ]
    return "\n".join([head, "", *table(["steps", "mean", *map(col, tasks), "train loss", "seconds"], body)]) + "\n"


def curve_figure(report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
    if not (rows := report.get("rows")):
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    steps = [r["steps"] for r in rows]
    ax.plot(steps, [r["mean_gain"] for r in rows], marker="o", color="black", label="mean")
    for t in rows[0]["gains"]:
        ax.plot(steps, [r["gains"][t] for r in rows], marker=".", lw=1, alpha=0.7, label=SHORT.get(t, t))
    ax.axhline(0, color="tab:red", ls=":", label="degraded input")
    ax.set_xscale("log")
    ax.set_xlabel("optimizer steps (each a full warm-up + cosine schedule)")
    ax.set_ylabel("PSNR gain over the input, validation (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
