"""Whose ticket is it? Tickets found on one task alone against the all-in-one ticket (issue 20).

mirl/tiny on the built-in sample recipe, trained as benchmarks/cost_quality.py trains it (identity
init, L1, 600 steps at lr SAMPLE_LR, patch 48, batch 8, global scope, rewind to init, 1 thread). Per
seed, one ticket at density ~0.107 is found on each task's data alone (``RunConfig(tasks=...)``,
exactly ``lotteryir prune --tasks``) and one on all tasks:

  denoise   denoise_15, denoise_25, denoise_50     derain   derain
  dehaze    dehaze                                 web      web
  all       every task of the sample recipe (the all-in-one ticket)

Route (the budget): IMP at 20% a round needs 11 trainings per ticket, 5 tickets x 3 seeds x 11 x
~2 min is far over the issue's 120 minutes. The default is IMP at a rate of 1 - sqrt(0.107) = 0.673
per round for 2 rounds (3 trainings per ticket; global magnitude pruning keeps the rate's share of
the remaining weights, so each round's density is (1 - rate)^round to the weight's rounding). --method
oneshot --target-density 0.107 (2 trainings per ticket) is the cheaper alternative; --rate/--rounds
choose another IMP schedule. --dry-run prints the estimate from a measured step.

Reported per density: (a) the mask overlap (IoU over all pruned tensors, ``run_overlap``) of every
pair of tickets, mean over seeds, beside the IoU two random masks with the same per-tensor densities
would have (``MaskOverlap.random_iou``) and the ratio; and, since the tickets of one seed share their
init, each ticket against its own init weights' magnitude mask (``rewind_magnitude_overlap``);
(b) each task ticket's PSNR on its own task's test sets beside the all-in-one ticket's on the same
sets and the degraded input's, with the paired difference (task - all-in-one) over seeds and its 95%
t-interval, and the same difference for the dense networks (round 0) the tickets came from; (c) the
verdict: one all-in-one ticket serves every task when, for each task, it is within 0.1 dB of the
task ticket or above it and the interval of the difference includes 0 or lies below it. The verdict
says which shortfalls the seeds resolve, which tickets return their input unchanged (learned nothing),
and whether a gap is already there before pruning.

Each (seed, ticket) is a PruningRun under --work; results are written after every finished ticket and
a rerun skips finished ones (an unfinished run resumes its directory).

    python benchmarks/task_tickets.py --seeds 3      # the full run (see --dry-run for the estimate)
    python benchmarks/task_tickets.py --quick        # 1 seed, oneshot, denoise/derain/all (under 20 min)
    python benchmarks/task_tickets.py --smoke --out /tmp/tt.json   # seconds: 3 steps, 2 photos a set
    python benchmarks/task_tickets.py --report-only  # table and figure from the results file
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lottery_tickets import paired, spread  # noqa: E402  (the same statistics as that benchmark)
from sample_training import (  # noqa: E402  (the shared training)
    add_training_args,
    empty_tensors,
    environment,
    sample_config,
    training_record,
)

from lotteryir._files import atomic_write_text  # noqa: E402
from lotteryir.analysis import rewind_magnitude_overlap, run_overlap  # noqa: E402
from lotteryir.data.tasks import ALL_TASKS, DENOISE_TASKS  # noqa: E402
from lotteryir.runs import PruningRun, RunConfig, build_run, read_history  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "task_tickets.json"
DEFAULT_WORK = ROOT / "benchmarks" / "work" / "task_tickets"
TARGET = 0.107
# ticket -> the tasks it trains on (None: every task of the recipe)
TICKETS: dict[str, list[str] | None] = {
    "denoise": list(DENOISE_TASKS),
    "derain": ["derain"],
    "dehaze": ["dehaze"],
    "web": ["web"],
    "all": None,
}
TOLERANCE = 0.1  # dB: the all-in-one ticket "serves" a task within this much of its own ticket
IDENTITY_DB = 0.01  # dB: a ticket this close to its input on every set and seed returns the input


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_training_args(p)
    p.add_argument("--method", default=None, choices=["imp", "oneshot"], help="default imp (oneshot for --quick)")
    p.add_argument("--rate", type=float, default=None, help=f"imp's rate per round (default 1 - sqrt({TARGET}))")
    p.add_argument("--rounds", type=int, default=2, help="imp rounds (default 2)")
    p.add_argument("--target-density", type=float, default=TARGET, help="oneshot's density")
    p.add_argument("--tickets", default=None, help=f"comma-separated subset of {', '.join(TICKETS)} (all is kept)")
    p.add_argument("--test-degradations", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="1 seed, oneshot, denoise, derain and all")
    p.add_argument("--smoke", action="store_true", help="seconds: 3 steps, 2 photos a set, denoise, derain, all")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--report-only", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.seeds, a.method, a.tickets = 1, a.method or "oneshot", a.tickets or "denoise,derain,all"
    if a.smoke:
        a.seeds, a.steps, a.patch, a.batch, a.test_degradations = 1, 3, 32, 4, 1
        a.tickets = a.tickets or "denoise,derain,all"
    a.method = a.method or "imp"
    a.rate = a.rate if a.rate is not None else 1 - math.sqrt(TARGET)
    names = [t.strip() for t in (a.tickets or ",".join(TICKETS)).split(",") if t.strip()]
    unknown = [t for t in names if t not in TICKETS]
    if unknown:
        p.error(f"--tickets: unknown {', '.join(unknown)}; available: {', '.join(TICKETS)}")
    a.tickets = [t for t in TICKETS if t in names or t == "all"]
    if a.work is None:
        a.work = DEFAULT_WORK if a.out.resolve() == DEFAULT_OUT else a.out.with_name(a.out.stem + "_work")
    return a


def density(args: argparse.Namespace) -> float:
    return args.target_density if args.method == "oneshot" else (1 - args.rate) ** args.rounds


def run_config(args: argparse.Namespace, seed: int, ticket: str) -> RunConfig:
    """The `lotteryir prune` configuration of one ticket (the cost_quality training)."""
    fixed: dict[str, Any] = (
        {"target_density": args.target_density} if args.method == "oneshot" else {"rounds": args.rounds}
    )
    opts: dict[str, Any] = {"degradations": args.test_degradations, **({"max_images": 2} if args.smoke else {})}
    tasks = TICKETS[ticket]
    return sample_config(
        args,
        seed,
        data_paths=opts,
        tasks=list(tasks) if tasks else None,
        rate=args.rate,
        method=args.method,
        **fixed,
    )


def directory(args: argparse.Namespace, seed: int, ticket: str) -> Path:
    return args.work / f"seed{seed}" / ticket


def cell(history: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """The ticket: its last round's scores per test set."""
    e = history[-1]
    return {
        "round": e["round"],
        "density": e["density"],
        "psnr": {k: v["psnr"] for k, v in e["eval"].items()},
        "input_psnr": {k: v["input_psnr"] for k, v in e["eval"].items()},
        "source": str(run_dir),
        **from_history(history),
        **empty_tensors(run_dir, e),  # the high-rate route can prune a tensor to nothing
    }


def from_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The dense round's scores (round 0: before any pruning) and the run's seconds on this machine."""
    return {
        "dense_psnr": {k: v["psnr"] for k, v in history[0]["eval"].items()},
        "seconds": sum(h["seconds"] for h in history),
    }


def _stored(ov: Any, round: int) -> dict[str, Any]:
    """What the report keeps of one ``MaskOverlap``."""
    return {"iou": ov.iou, "random_iou": ov.random_iou, "round": round}


# -- aggregation ---------------------------------------------------------------------------
def overlaps(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Every pair of finished tickets of a seed (``run_overlap`` on the run directories), kept in the report."""
    store = report.setdefault("overlap", {})
    for seed, tickets in report["results"].items():
        got = store.setdefault(seed, {})
        names = [t for t in TICKETS if t in tickets]
        for i, a in enumerate(names):
            for b in names[i:]:
                key = f"{a}|{b}"
                if key in got:
                    continue
                ra, rb = tickets[a], tickets[b]
                if ra["round"] != rb["round"] or not (Path(ra["source"]).is_dir() and Path(rb["source"]).is_dir()):
                    continue
                got[key] = _stored(run_overlap(ra["source"], rb["source"], round=ra["round"])[1], ra["round"])
    for tickets in report["results"].values():  # results written before dense_psnr was kept: from the history
        for res in tickets.values():
            if ("dense_psnr" not in res or "seconds" not in res) and Path(res["source"]).is_dir():
                res.update(from_history(read_history(res["source"])))
    # the same ticket of two seeds (two inits): what the task alone makes masks share
    cross = report.setdefault("cross_seed_overlap", {})
    seeds = sorted(report["results"], key=int)
    for t in TICKETS:
        got = cross.setdefault(t, {})
        for i, sa in enumerate(seeds):
            for sb in seeds[i + 1 :]:
                ra, rb = report["results"][sa].get(t), report["results"][sb].get(t)
                key = f"{sa}|{sb}"
                if key in got or not (ra and rb) or ra["round"] != rb["round"]:
                    continue
                if Path(ra["source"]).is_dir() and Path(rb["source"]).is_dir():
                    got[key] = _stored(run_overlap(ra["source"], rb["source"], round=ra["round"])[1], ra["round"])
    # the reference for tickets of one seed (one init): each ticket against its init's own magnitude mask
    own = report.setdefault("init_overlap", {})
    for seed, tickets in report["results"].items():
        got = own.setdefault(seed, {})
        for t, res in tickets.items():
            if t not in got and Path(res["source"]).is_dir():
                got[t] = _stored(rewind_magnitude_overlap(res["source"], round=res["round"])[1], res["round"])


def _spread_ious(vals: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over stored overlaps of the IoU and of its random expectation."""
    return {
        "iou": spread([v["iou"] for v in vals]),
        "random_iou": spread([v["random_iou"] for v in vals]),
        "n": len(vals),
    }


def aggregate(report: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    res, ovs = report["results"], report.get("overlap", {})
    seeds = sorted(res, key=int)
    names = [t for t in TICKETS if any(t in res[s] for s in seeds)]
    matrix: dict[str, dict[str, Any]] = {}
    for a in names:
        for b in names:
            key = f"{a}|{b}" if names.index(a) <= names.index(b) else f"{b}|{a}"
            vals = [ovs[s][key] for s in seeds if key in ovs.get(s, {})]
            if not vals:
                continue
            x = _spread_ious(vals)
            rnd = x["random_iou"]["mean"]
            matrix.setdefault(a, {})[b] = {**x, "ratio": x["iou"]["mean"] / rnd if rnd else math.nan}
    init: dict[str, Any] = {}
    for t in names:
        vals = [report.get("init_overlap", {}).get(s, {}).get(t) for s in seeds]
        vals = [v for v in vals if v]
        if vals:
            init[t] = _spread_ious(vals)
            pairs = list(report.get("cross_seed_overlap", {}).get(t, {}).values())
            if pairs:
                init[t]["cross_seed"] = _spread_ious(pairs)
    psnr: dict[str, Any] = {}
    for t in names:
        if t == "all":
            continue
        both = [s for s in seeds if t in res[s] and "all" in res[s]]
        if not both:
            continue
        sets = list(res[both[0]][t]["psnr"])
        mine = [statistics.fmean(res[s][t]["psnr"][k] for k in sets) for s in both]
        allin = [statistics.fmean(res[s]["all"]["psnr"][k] for k in sets) for s in both]
        inp = statistics.fmean(res[both[0]][t]["input_psnr"][k] for k in sets)
        per_set = {
            k: {
                "task": spread([res[s][t]["psnr"][k] for s in both]),
                "all": spread([res[s]["all"]["psnr"][k] for s in both]),
                "input": res[both[0]][t]["input_psnr"][k],
                "diff": paired([res[s][t]["psnr"][k] for s in both], [res[s]["all"]["psnr"][k] for s in both]),
            }
            for k in sets
        }
        d = paired(mine, allin)
        dense = [s for s in both if "dense_psnr" in res[s][t] and "dense_psnr" in res[s]["all"]]
        # the same comparison before pruning: a gap already there is the training's, not the mask's
        dense_d = (
            paired(
                [statistics.fmean(res[s][t]["dense_psnr"][k] for k in sets) for s in dense],
                [statistics.fmean(res[s]["all"]["dense_psnr"][k] for k in sets) for s in dense],
            )
            if dense
            else None
        )
        # all-in-one serves t: its mean within TOLERANCE of (or above) the task ticket's, and the interval of
        # task - all includes 0 or lies below (one seed: no interval, the mean alone decides)
        close = -d["mean"] >= -TOLERANCE
        ci_ok = d["n"] < 2 or d["low"] <= 0
        # a ticket that gives back its degraded input on every set and seed did not learn the task at all
        same = all(abs(res[s][t]["psnr"][k] - res[s][t]["input_psnr"][k]) < IDENTITY_DB for s in both for k in sets)
        psnr[t] = {
            "sets": sets,
            "task": spread(mine),
            "all": spread(allin),
            "input": inp,
            "diff": d,
            "dense_diff": dense_d,
            "per_set": per_set,
            "n": len(both),
            "served": bool(close and ci_ok),
            "resolved": bool(d["n"] >= 2 and d["low"] > 0),
            "returns_input": same,
        }
    tasks = [t for t in args.tickets if t != "all"]
    complete = all(t in psnr for t in tasks)
    if not complete:
        verdict = "incomplete: " + ", ".join(t for t in tasks if t not in psnr) + " not finished"
    elif all(psnr[t]["served"] for t in tasks):
        verdict = f"yes: the all-in-one ticket is within {TOLERANCE} dB of (or above) every task ticket"
    else:
        verdict = "no: " + _shortfall(psnr, tasks)
    if complete:
        verdict += _caveats(psnr, tasks)
    return {
        "density": density(args),
        "tickets": names,
        "overlap": matrix,
        "init_overlap": init,
        "psnr": psnr,
        "seconds": (secs := [res[s][t]["seconds"] for s in seeds for t in res[s] if "seconds" in res[s][t]]),
        "seconds_total": sum(secs),
        # tensors pruned to nothing, the most over seeds, of how many
        "empty_tensors_max": {
            t: max(len(res[s][t].get("empty_tensors", [])) for s in seeds if t in res[s]) for t in names
        },
        "tensors": max((res[s][t].get("tensors", 0) for s in seeds for t in res[s]), default=0),
        "verdict": verdict,
    }


def _shortfall(psnr: dict[str, Any], tasks: list[str]) -> str:
    """Where the task's own ticket is better, split into what the seeds resolve and what is within their noise."""
    lost = [t for t in tasks if not psnr[t]["served"]]
    sure = [t for t in lost if psnr[t]["resolved"]]
    noisy = [t for t in lost if not psnr[t]["resolved"]]
    parts = []
    if sure:
        parts.append(
            "the task's own ticket is better on " + ", ".join(f"{t} ({_ci(psnr[t]['diff'])} dB)" for t in sure)
        )
    if noisy:
        n = max(psnr[t]["n"] for t in noisy)
        parts.append(
            f"{'it is also ahead' if sure else 'the task ticket is ahead'} by more than {TOLERANCE} dB, within the "
            f"noise of {n} seed(s), on " + ", ".join(f"{t} ({_ci(psnr[t]['diff'])} dB)" for t in noisy)
        )
    return "; ".join(parts)


def _caveats(psnr: dict[str, Any], tasks: list[str]) -> str:
    """What the table's numbers do not say by themselves: tickets that did nothing, an all-in-one below the input."""
    text = ""
    idle = [t for t in tasks if psnr[t]["returns_input"]]
    if idle:
        text += (
            f". The {' and '.join(idle)} "
            + ("tickets return their" if len(idle) > 1 else "ticket returns its")
            + " degraded input exactly (every set, every seed): trained "
            "on that task alone the network did not learn it, so there the all-in-one ticket is compared with "
            "doing nothing"
        )
    before = [t for t in tasks if not psnr[t]["served"] and (dd := psnr[t]["dense_diff"]) and dd["mean"] > TOLERANCE]
    if before:
        text += (
            ". The gap is already there in the dense networks (task − all-in-one at round 0: "
            + ", ".join(f"{t} {_ci(psnr[t]['dense_diff'])} dB" for t in before)
            + "): it comes from training on all tasks at once rather than from the all-in-one mask"
        )
    below = [t for t in tasks if psnr[t]["all"]["mean"] < psnr[t]["input"]]
    if below:
        text += ". The all-in-one ticket is below the degraded input on " + ", ".join(
            f"{t} ({psnr[t]['all']['mean'] - psnr[t]['input']:+.2f} dB)" for t in below
        )
    return text


# -- outputs -------------------------------------------------------------------------------
def _ci(d: dict[str, float]) -> str:
    if d["n"] < 2:
        return f"{d['mean']:+.2f} (1 seed)"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def route(args: argparse.Namespace) -> str:
    if args.method == "oneshot":
        return f"oneshot to density {args.target_density} (2 trainings per ticket)"
    return f"imp, {args.rounds} rounds at rate {args.rate:.3f} ({args.rounds + 1} trainings per ticket)"


def markdown(summary: dict[str, Any], report: dict[str, Any], args: argparse.Namespace) -> str:
    names, m = summary["tickets"], summary["overlap"]
    c = report["config"]
    out = [
        f"## Whose ticket is it? (density {summary['density']:.3f})",
        "",
        f"mirl/{args.size}, sample recipe, {args.steps} steps per training, route: {route(args)}; "
        f"seeds {c['seeds']}; {c['test_images_per_set']} test images per set x {args.test_degradations} degradations.",
        "",
        "### Mask overlap (IoU over all pruned tensors, mean over seeds; random: same per-tensor densities)",
        "",
        "| ticket | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for a in names:
        row = []
        for b in names:
            x = m.get(a, {}).get(b)
            row.append(
                f"{x['iou']['mean']:.3f} (random {x['random_iou']['mean']:.3f}, x{x['ratio']:.2f})" if x else "-"
            )
        out.append(f"| {a} | " + " | ".join(row) + " |")
    init = summary.get("init_overlap", {})
    if init:
        out += [
            "",
            "Tickets of one seed share their init. The reference for that: each ticket against the magnitude mask "
            "of its own init weights at the ticket's per-tensor counts (``rewind_magnitude_overlap``); beside it, "
            "the same ticket found with two seeds (two inits: no init shared).",
            "",
            "| ticket | IoU with its init's magnitude mask (mean ± std over seeds) | random | ratio | "
            "the same ticket of two seeds (mean over pairs) | random |",
            "|---|---|---|---|---|---|",
        ]
        for t, x in init.items():
            r = x["random_iou"]["mean"]
            c = x.get("cross_seed")
            other = f"{c['iou']['mean']:.3f} ({c['n']} pairs) | {c['random_iou']['mean']:.3f}" if c else "- | -"
            out.append(
                f"| {t} | {x['iou']['mean']:.3f} ± {x['iou']['std']:.3f} | {r:.3f} | "
                f"x{x['iou']['mean'] / r if r else math.nan:.2f} | {other} |"
            )
    out += [
        "",
        "### PSNR on each task's own test sets (dB, mean ± std over seeds; difference paired, 95% t-interval)",
        "",
        "| task | test sets | degraded input | task ticket | all-in-one ticket | task − all-in-one | "
        "all-in-one serves it | dense: task − all-in-one |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t, x in summary["psnr"].items():
        out.append(
            f"| {t} | {', '.join(x['sets'])} | {x['input']:.2f} | {x['task']['mean']:.2f} ± {x['task']['std']:.2f}"
            f"{' (= input)' if x.get('returns_input') else ''} | "
            f"{x['all']['mean']:.2f} ± {x['all']['std']:.2f} | {_ci(x['diff'])} | {'yes' if x['served'] else 'no'} | "
            f"{_ci(x['dense_diff']) if x.get('dense_diff') else '-'} |"
        )
    cut = summary["empty_tensors_max"]
    if any(cut.values()):
        out += [
            "",
            "**Warning:** tensors pruned to nothing (the most over seeds; each one cuts the network): "
            + ", ".join(f"{t} {n}" for t, n in cut.items() if n),
        ]
    secs = summary.get("seconds", [])
    if secs:
        out += [
            "",
            f"Time: {len(secs)} tickets, {summary['seconds_total'] / 60:.0f} min of training and scoring in all "
            "(median "
            f"{statistics.median(secs) / 60:.1f} min a ticket, one thread each, {report['environment']['cpu_count']} "
            "CPU cores).",
        ]
    out += ["", f"**Verdict:** does one all-in-one ticket serve every task? {summary['verdict']}"]
    return "\n".join(out) + "\n"


def figure(summary: dict[str, Any], args: argparse.Namespace, path: Path) -> None:
    """Left: the IoU heatmap, each cell annotated with the random expectation; right: PSNR bars per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names, m = summary["tickets"], summary["overlap"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2))
    init = summary.get("init_overlap", {})
    rows = [*names, "own init\nmagnitudes"] if init else list(names)
    grid = np.full((len(rows), len(names)), np.nan)
    for j, b in enumerate(names):
        if b in init:  # the last row: each ticket against its own init weights' magnitude mask
            x = init[b]
            grid[-1, j] = x["iou"]["mean"]
            ax.text(j, len(names), f"{x['iou']['mean']:.2f}\n(rnd {x['random_iou']['mean']:.2f})", ha="center",
                    va="center", fontsize=8, color="white" if x["iou"]["mean"] < 0.6 else "black")  # fmt: skip
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            x = m.get(a, {}).get(b)
            if x:
                grid[i, j] = x["iou"]["mean"]
                ax.text(
                    j,
                    i,
                    f"{x['iou']['mean']:.2f}\n(rnd {x['random_iou']['mean']:.2f})",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if x["iou"]["mean"] < 0.6 else "black",
                )
    if names:  # an empty grid (nothing finished yet) has no extent to draw
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(rows)), rows)
        fig.colorbar(im, ax=ax, fraction=0.046)
    else:
        ax.text(0.5, 0.5, "no ticket finished yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"mask IoU at density {summary['density']:.3f} (mean over seeds; rnd: random masks)", fontsize=10)
    tasks = list(summary["psnr"])
    xs = np.arange(len(tasks))
    for k, (what, label, color) in enumerate(
        (("input", "degraded input", "tab:red"), ("task", "task ticket", "C0"), ("all", "all-in-one ticket", "C1"))
    ):
        vals = [summary["psnr"][t][what] for t in tasks]
        ys = [v if isinstance(v, float) else v["mean"] for v in vals]
        err = [0.0 if isinstance(v, float) else v["std"] for v in vals]
        bx.bar(xs + (k - 1) * 0.27, ys, 0.27, yerr=err, capsize=3, label=label, color=color)
    lows = [summary["psnr"][t]["input"] for t in tasks]
    if lows:  # bars from 0 would hide tenths of a dB: start a dB below the lowest
        bx.set_ylim(bottom=min(lows) - 1.0)
    bx.set_xticks(xs, tasks)
    bx.set_ylabel("PSNR on the task's own test sets (dB)")
    bx.set_title("task ticket vs all-in-one ticket (std over seeds)", fontsize=10)
    bx.legend(fontsize=8)
    bx.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"mirl/{args.size}, sample recipe; {route(args)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def write_outputs(report: dict[str, Any], args: argparse.Namespace) -> str:
    overlaps(report, args)
    report["summary"] = aggregate(report, args)
    atomic_write_text(args.out, json.dumps(report, indent=2))
    text = markdown(report["summary"], report, args)
    atomic_write_text(args.out.with_suffix(".md"), text)
    png = args.out.with_suffix(".png")
    tmp = png.with_name(f".{png.name}.tmp")
    figure(report["summary"], args, tmp)
    os.replace(tmp, png)
    return text


# -- main ----------------------------------------------------------------------------------
def config_record(args: argparse.Namespace, n_test: int) -> dict[str, Any]:
    return {
        **training_record(args, n_test),
        "method": args.method,
        "rounds": args.rounds if args.method == "imp" else None,
        "target_density": args.target_density if args.method == "oneshot" else None,
        "density": density(args),
        "tickets": {t: TICKETS[t] or list(ALL_TASKS) for t in TICKETS},
        "smoke": args.smoke,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    if args.report_only:
        if not args.out.is_file():
            print(f"error: {args.out} does not exist; run the benchmark first", file=sys.stderr)
            return 2
        report = json.loads(args.out.read_text())
        c = report["config"]  # the table describes what was run, not this invocation's defaults
        args.tickets, args.method, args.rate = c["run_tickets"], c["method"], c["rate"]
        args.rounds = c["rounds"] if c["rounds"] is not None else args.rounds
        args.target_density = c["target_density"] if c["target_density"] is not None else args.target_density
        args.steps, args.test_degradations, args.size = c["steps"], c["test_degradations"], c["model"].split("/")[1]
        print(write_outputs(report, args))
        return 0

    t_build = time.perf_counter()
    probe = build_run(run_config(args, args.seed0, "all").resolved())
    build_s = time.perf_counter() - t_build
    n_test = len(next(iter(probe.test_sets.values())))  # type: ignore[arg-type]
    config = config_record(args, n_test)
    if args.out.is_file():
        report = json.loads(args.out.read_text())
        old = {k: v for k, v in report.get("config", {}).items() if k not in ("seeds", "run_tickets")}
        if old != config:
            diff = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in config.items() if old.get(k) != v]
            print(f"error: {args.out} holds another configuration ({'; '.join(diff[:3])})", file=sys.stderr)
            return 2
    else:
        report = {"benchmark": "task_tickets", "results": {}}
    prev = report.get("config", {})
    report["config"] = {
        **config,
        "seeds": sorted({*prev.get("seeds", []), *seeds}),
        "run_tickets": [t for t in TICKETS if t in {*prev.get("run_tickets", []), *args.tickets}],
    }
    report["environment"] = environment()
    results: dict[str, Any] = report["results"]
    todo = [(s, t) for s in seeds for t in args.tickets if t not in results.get(str(s), {})]
    trainings = (2 if args.method == "oneshot" else args.rounds + 1) * len(todo)
    step_s, eval_s = probe.measure(steps=4 if not args.smoke else 2)
    n_sets = len(probe.test_sets)
    # an evaluation scores the ticket's own sets only: scale the all-set evaluation by its share
    evals = sum(len(TICKETS[t] or ALL_TASKS) / n_sets for _, t in todo) * (trainings / max(1, len(todo)))
    estimate = trainings * args.steps * step_s + evals * eval_s + len(todo) * build_s
    load = os.getloadavg()
    print(
        f"task tickets: mirl/{args.size}, sample recipe, {n_sets} test sets x {n_test} images; {args.steps} "
        f"steps/training; {route(args)} -> density {density(args):.4f}; seeds {seeds}; tickets "
        f"{', '.join(args.tickets)}; {probe.threads.threads} thread(s)"
    )
    print(
        f"  {len(todo)} ticket(s) to find, {trainings} trainings; measured {step_s * 1000:.0f} ms/step, "
        f"{eval_s:.1f} s/evaluation of all sets, {build_s:.1f} s/run build (load average {load[0]:.2f}) "
        f"-> estimated {estimate / 60:.1f} min",
        flush=True,
    )
    if args.dry_run:
        return 0
    report["timing"] = {
        "step_seconds": step_s,
        "eval_seconds": eval_s,
        "estimate_seconds": estimate,
        "load_average": load[0],
    }
    del probe
    write_outputs(report, args)
    started = time.perf_counter()
    for n, (seed, ticket) in enumerate(todo, start=1):
        t0 = time.perf_counter()
        run_dir = directory(args, seed, ticket)
        history = PruningRun(run_dir, run_config(args, seed, ticket)).run()
        results.setdefault(str(seed), {})[ticket] = cell(history, run_dir)
        write_outputs(report, args)
        got = results[str(seed)][ticket]
        print(
            f"[{n}/{len(todo)}] seed {seed} {ticket:<8} density {got['density']:.4f}: mean PSNR "
            f"{statistics.fmean(got['psnr'].values()):.2f} dB; {time.perf_counter() - t0:.0f} s, "
            f"{(time.perf_counter() - started) / 60:.1f} min in all",
            flush=True,
        )
    report["timing"]["total_seconds"] = time.perf_counter() - started
    text = write_outputs(report, args)
    print("\n" + text)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')}, {args.out.with_suffix('.png')}; runs in {args.work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
