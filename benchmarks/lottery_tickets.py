"""Are the tickets real? IMP tickets against clean controls, over seeds, with paired confidence intervals.

The built-in sample recipe (denoise at sigma 15/25/50, derain, dehaze, web JPEG) and mirl/tiny,
trained as the main command trains it (identity init, identity pairs in the mix, L1, AdamW with
warm-up and cosine). Ten rounds of 20% global magnitude pruning take the density to 0.107. For
every seed:

  dense          round 0, trained once
  imp_init       the IMP ticket, survivors rewound to the initialization (the MIR-L paper); IMP
                 trains every level, but is evaluated only at the reported densities
  random_reinit  imp_init's mask on a fresh initialization: a new model built under another seed
                 (every parameter and buffer the constructor draws), trained at reported densities
  random_prune   a random mask with imp_init's per-layer densities on the initial weights,
                 trained at reported densities
  imp_step       with --late-rewind K: a second IMP line rewinding to step K of dense training

The seed changes the initialization, the data order and the controls. All variants of one seed
share the data order, so differences between them are paired. The test set is the sample
recipe's five test photographs, each under --test-degradations independently seeded
degradations (15 images per set by default); no test photograph is seen in training.

Reported per variant and density: mean PSNR (and per set) with the standard deviation over
seeds; for every ticket-vs-control and ticket-vs-dense comparison, the paired difference over
seeds with its 95% t-interval. The degraded input's scores stand as a row of every table and as a
line in the figure. The verdict checks the targets of the evidence issue:

  1. at density 0.107 the ticket's mean PSNR is within 0.1 dB of dense, or better;
  2. at every reported density <= 0.33 the ticket beats each control by >= 0.5 dB, with the
     95% interval of the paired difference above 0;
  and names, per test set, where the ticket's advantage over both controls holds.

--curve first trains the dense network alone for several step budgets on the validation split
(three held-out training photographs; not the test set) and shows where its quality flattens:
that is how --steps was chosen.

    python benchmarks/lottery_tickets.py --seeds 3              # the README's run (~1.5 h on 2 cores)
    python benchmarks/lottery_tickets.py --quick                # 1 seed, 3 reported densities (~15 min)
    python benchmarks/lottery_tickets.py --curve                # dense quality against steps (validation)
    python benchmarks/lottery_tickets.py --smoke --out /tmp/lt.json   # seconds: the test suite's run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from lotteryir.engine import evaluate
from lotteryir.pruning import RoundContext
from lotteryir.runs import RunConfig, build_run
from lotteryir.runs.config import SAMPLE_INIT, SAMPLE_LOSS, SAMPLE_LR, SAMPLE_PATCH

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "lottery_tickets.json"
CONTROLS = ("random_reinit", "random_prune")
TARGET_DENSE_GAP = 0.1  # dB: the ticket at 0.107 may trail dense by at most this
TARGET_CONTROL_GAP = 0.5  # dB: the ticket over each control at density <= 0.33
CONTROL_DENSITY = 0.33
# --smoke scores centre crops of the test photographs: evaluation is most of a smoke run's time,
# and what the smoke checks (every variant, set and statistic present) does not depend on the size.
SMOKE_SIDE = 48
SHORT = {
    "denoise_15": "σ15",
    "denoise_25": "σ25",
    "denoise_50": "σ50",
    "derain": "rain",
    "dehaze": "haze",
    "web": "web",
}
# Two-sided 95% Student t quantiles by degrees of freedom (scipy is not a dependency).
T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    30: 2.042,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, default=3, help="seeds seed0 .. seed0+N-1 (default 3)")
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--size", default="tiny", help="mirl size (default tiny)")
    p.add_argument("--steps", type=int, default=600, help="optimizer steps per training (default 600; see --curve)")
    p.add_argument("--lr", type=float, default=SAMPLE_LR)
    p.add_argument("--patch", type=int, default=SAMPLE_PATCH)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=10, help="pruning rounds (default 10: density 0.107)")
    p.add_argument("--rate", type=float, default=0.2)
    p.add_argument(
        "--report-every",
        type=int,
        default=2,
        help="evaluate IMP and train the controls every N rounds (and at the last); default 2",
    )
    p.add_argument("--late-rewind", type=int, default=None, metavar="K", help="also run IMP rewinding to step K")
    p.add_argument("--test-degradations", type=int, default=3, help="seeded degradations per test photograph")
    p.add_argument("--threads", default="auto", help="CPU threads: auto (idle cores at the start) or N")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON path; .md and .png go beside it")
    p.add_argument("--quick", action="store_true", help="1 seed, 6 rounds reported every 3 (about 15 min)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"seconds a seed: 2 rounds, 3 steps, 2 photos cropped to {SMOKE_SIDE} px (for the tests)",
    )
    p.add_argument(
        "--curve", action="store_true", help="dense quality against steps on the validation split, then stop"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.rounds, args.report_every, args.test_degradations = 1, 6, 3, 1
    if args.smoke:
        args.rounds, args.report_every, args.steps, args.patch, args.batch = 2, 1, 3, 32, 4
        args.test_degradations = 1
    if args.late_rewind is not None and not 1 <= args.late_rewind < args.steps:
        p.error(f"--late-rewind must be in [1, --steps), got {args.late_rewind}")
    return args


def reported_rounds(rounds: int, every: int) -> list[int]:
    """The rounds whose density is reported: 0, every N-th, and the last."""
    return sorted({0, rounds, *range(every, rounds + 1, every)})


# -- statistics ----------------------------------------------------------------------------
def t975(df: int) -> float:
    """Two-sided 95% Student t quantile (table, nearest smaller tabulated df beyond 10; 1.96 beyond 30)."""
    if df in T975:
        return T975[df]
    if df > 30:
        return 1.96
    return T975[max(k for k in T975 if k <= df)]


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean of a - b over seeds, its standard deviation and 95% t-interval (NaN bounds for one seed)."""
    diffs = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return {"mean": mean, "std": math.nan, "low": math.nan, "high": math.nan, "n": len(diffs)}
    sd = statistics.stdev(diffs)
    half = t975(len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return {"mean": mean, "std": sd, "low": mean - half, "high": mean + half, "n": len(diffs)}


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


# -- one seed ------------------------------------------------------------------------------
class CenterCrop(Dataset):
    """A test set whose images (input and target alike) are cut to their central ``side`` x ``side``."""

    def __init__(self, dataset: Dataset, side: int) -> None:
        self.dataset, self.side = dataset, side

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        for key in ("input", "target"):
            h, w = item[key].shape[-2:]
            top, left = max(0, (h - self.side) // 2), max(0, (w - self.side) // 2)
            item[key] = item[key][..., top : top + self.side, left : left + self.side]
        return item


class Bench:
    """Data, test sets and training shared by every seed, built as `lotteryir prune` builds them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # One build for the setup and the time estimate; every seed builds its own (build_run).
        self.thread_count: int | None = None if args.threads == "auto" else int(args.threads)
        self.probe = build_run(self.config(args.seed0))
        if args.smoke:
            self.probe.test_sets = {k: CenterCrop(v, SMOKE_SIDE) for k, v in self.probe.test_sets.items()}
        self.test_sets = self.probe.test_sets
        self.labels = list(self.test_sets)
        self.threads = self.probe.threads
        self.thread_count = self.threads.threads  # every seed trains with the count the first build chose

    def config(self, seed: int, rewind: str = "init") -> RunConfig:
        """The run configuration of one seed (the sample recipe, mirl, global IMP, the sample loss and init)."""
        a = self.args
        opts = {"degradations": a.test_degradations, **({"max_images": 2} if a.smoke else {})}
        config = RunConfig(
            model="mirl",
            size=a.size,
            recipe="sample",
            data_paths=opts,
            rounds=a.rounds,
            rate=a.rate,
            scope="global",
            rewind=rewind,
            steps=a.steps,
            batch_size=a.batch,
            patch_size=a.patch,
            lr=a.lr,
            loss=SAMPLE_LOSS,
            init=SAMPLE_INIT,
            seed=seed,
            device=a.device,
            threads=self.thread_count,
        )
        return config.resolved()

    def fresh_model(self) -> torch.nn.Module:
        return self.probe.fresh_model().to(self.probe.device)

    def score(self, model: torch.nn.Module) -> dict[str, Any]:
        result = evaluate(model, self.test_sets, device=self.args.device)
        return {
            "psnr": {k: s.psnr for k, s in result.sets.items()},
            "ssim": {k: s.ssim for k, s in result.sets.items()},
            "input_psnr": {k: s.input_psnr for k, s in result.sets.items()},
            "input_ssim": {k: s.input_ssim for k, s in result.sets.items()},
        }


def run_seed(bench: Bench, seed: int, log: Callable[..., None]) -> dict[int, dict[str, Any]]:
    """Every variant of one seed; returns round -> {"density", "variants": {variant: result}}."""
    a = bench.args
    report = set(reported_rounds(a.rounds, a.report_every))
    rows: dict[int, dict[str, Any]] = {}

    def closure(variant: str) -> Callable[[torch.nn.Module, RoundContext], dict[str, Any]]:
        def train(model: torch.nn.Module, ctx: RoundContext) -> dict[str, Any]:
            name = ctx.extras.get("control") or ("dense" if ctx.round == 0 and variant == "imp_init" else variant)
            start = time.perf_counter()
            metrics = trainer(model, ctx)
            trained = time.perf_counter()
            result = {"train_loss": metrics["loss"], "train_seconds": trained - start}
            if ctx.round in report and not (name == "imp_step" and ctx.round == 0):  # the twin's round 0 is dense again
                result.update(bench.score(model))
                result["mean_psnr"] = statistics.fmean(result["psnr"].values())
                result["mean_ssim"] = statistics.fmean(result["ssim"].values())
                result["eval_seconds"] = time.perf_counter() - trained
                rows.setdefault(ctx.round, {"round": ctx.round, "density": ctx.density, "variants": {}})
                rows[ctx.round]["variants"][name] = result
            log(seed, ctx.round, ctx.density, name, result)
            return {"loss": metrics["loss"]}

        return train

    # Built as `lotteryir prune` builds a run: the seed's initialization, data, trainer and pruner.
    built = build_run(bench.config(seed), closure("imp_init"))
    trainer, pruner = built.trainer, built.pruner
    late = None
    if a.late_rewind is not None:  # the same seed, so the same initialization and round-0 training
        late = build_run(bench.config(seed, rewind=f"step:{a.late_rewind}"), closure("imp_step")).pruner
    for r in range(a.rounds + 1):
        pruner.run_round()
        if late is not None:  # its round 0 repeats the dense training, and snapshots step K on the way
            late.run_round()
        if r >= 1 and r in report:
            for i, kind in enumerate(CONTROLS):
                control = pruner.make_control(kind, seed=seed * 1009 + 31 * r + i)
                ctx = RoundContext(round=r, density=pruner.mask.density, seed=seed, extras={"control": kind})
                closure(kind)(control, ctx)
    return rows


# -- aggregation ---------------------------------------------------------------------------
def aggregate(runs: list[dict[str, Any]], labels: list[str], variants: list[str]) -> dict[str, Any]:
    """Means and spreads per round and variant; paired differences with 95% intervals."""
    rounds = sorted({int(r) for run in runs for r in run["rounds"]})
    first = runs[0]["rounds"]
    dense = [run["rounds"][0]["variants"]["dense"] for run in runs]
    inputs = first[0]["variants"]["dense"]
    summary = {
        "input": {
            "psnr": inputs["input_psnr"],
            "ssim": inputs["input_ssim"],
            "mean_psnr": statistics.fmean(inputs["input_psnr"].values()),
            "mean_ssim": statistics.fmean(inputs["input_ssim"].values()),
        },
        "rounds": [],
    }
    for r in rounds:
        row: dict[str, Any] = {"round": r, "density": first[r]["density"], "variants": {}, "paired": {}}
        for v in ["dense"] if r == 0 else variants:
            res = [run["rounds"][r]["variants"][v] for run in runs if v in run["rounds"][r]["variants"]]
            if not res:
                continue
            row["variants"][v] = {
                "mean_psnr": spread([x["mean_psnr"] for x in res]),
                "mean_ssim": spread([x["mean_ssim"] for x in res]),
                "psnr": {l: spread([x["psnr"][l] for x in res]) for l in labels},
            }
        if r > 0 and "imp_init" in row["variants"]:
            ticket = [run["rounds"][r]["variants"]["imp_init"] for run in runs]
            others = {
                c: [run["rounds"][r]["variants"][c] for run in runs]
                for c in (*CONTROLS, "imp_step")
                if c in row["variants"]
            }
            others["dense"] = dense
            for name, rs in others.items():
                row["paired"][f"imp_init - {name}"] = {
                    "mean": paired([t["mean_psnr"] for t in ticket], [o["mean_psnr"] for o in rs]),
                    "sets": {l: paired([t["psnr"][l] for t in ticket], [o["psnr"][l] for o in rs]) for l in labels},
                }
        summary["rounds"].append(row)
    return summary


def verdict(summary: dict[str, Any], labels: list[str], target_density: float) -> dict[str, Any]:
    rows = summary["rounds"]
    last = next((r for r in rows if abs(r["density"] - target_density) < 5e-3), None)
    t1: dict[str, Any] = {
        "target": f"imp_init at density {target_density:.3f} within {TARGET_DENSE_GAP} dB of dense or better"
    }
    if last is None:
        t1["status"] = "not measured"
    else:
        d = last["paired"]["imp_init - dense"]["mean"]
        t1.update(status="pass" if d["mean"] >= -TARGET_DENSE_GAP else "fail", difference=d)
    t2: dict[str, Any] = {
        "target": f"imp_init >= {TARGET_CONTROL_GAP} dB above each control at every reported "
        f"density <= {CONTROL_DENSITY}, 95% interval above 0"
    }
    checks = []
    for row in rows:
        if row["round"] == 0 or row["density"] > CONTROL_DENSITY:
            continue
        for c in CONTROLS:
            d = row["paired"][f"imp_init - {c}"]["mean"]
            ok = d["mean"] >= TARGET_CONTROL_GAP and (d["n"] < 2 or d["low"] > 0)
            holds = [l for l in labels if row["paired"][f"imp_init - {c}"]["sets"][l]["low"] > 0]
            checks.append(
                {"density": row["density"], "control": c, "difference": d, "pass": ok, "sets_ci_above_0": holds}
            )
    if checks:
        t2.update(
            status="pass" if all(c["pass"] for c in checks) else "fail",
            checks=checks,
            failed=sum(not c["pass"] for c in checks),
        )
    else:
        t2["status"] = "not measured"
    per_set = {}
    for l in labels:
        per_set[l] = [
            row["density"]
            for row in rows
            if row["round"] > 0
            and row["density"] <= CONTROL_DENSITY
            and all(row["paired"][f"imp_init - {c}"]["sets"][l]["low"] > 0 for c in CONTROLS)
        ]
    return {"ticket_vs_dense": t1, "ticket_vs_controls": t2, "sets_where_ticket_beats_both_controls": per_set}


# -- presentation --------------------------------------------------------------------------
def _pm(s: dict[str, float], seeds: int, digits: int = 2) -> str:
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if seeds > 1 else "")


def _ci(d: dict[str, float]) -> str:
    if d["n"] < 2:
        return f"{d['mean']:+.2f}"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def markdown(summary: dict[str, Any], labels: list[str], variants: list[str], seeds: int, v: dict[str, Any]) -> str:
    short = [SHORT.get(l.split("/")[0], l) for l in labels]
    inp = summary["input"]
    out = [
        f"### Mean PSNR over the six test sets (dB), mean ± std over {seeds} seed(s)",
        "",
        "| density | " + " | ".join(variants) + " |",
        "|---" * (len(variants) + 1) + "|",
        "| degraded input | " + " | ".join(f"{inp['mean_psnr']:.2f}" for _ in variants) + " |",
    ]
    for row in summary["rounds"]:
        if row["round"] == 0:
            cell = _pm(row["variants"]["dense"]["mean_psnr"], seeds)
            out.append("| 1.000 (dense) | " + " | ".join(cell for _ in variants) + " |")
            continue
        cells = [_pm(row["variants"][x]["mean_psnr"], seeds) if x in row["variants"] else "-" for x in variants]
        out.append(f"| {row['density']:.3f} | " + " | ".join(cells) + " |")
    comps = [k for k in summary["rounds"][-1]["paired"]]
    out += [
        "",
        "### Paired differences of the mean PSNR (dB): mean [95% t-interval] over seeds",
        "",
        "| density | " + " | ".join(comps) + " |",
        "|---" * (len(comps) + 1) + "|",
    ]
    for row in summary["rounds"][1:]:
        out.append(
            f"| {row['density']:.3f} | "
            + " | ".join(_ci(row["paired"][k]["mean"]) if k in row["paired"] else "-" for k in comps)
            + " |"
        )
    for variant in variants:
        out += [
            "",
            f"### {variant}: PSNR per test set (dB), mean ± std over seeds",
            "",
            "| density | " + " | ".join(short) + " | mean |",
            "|---" * (len(labels) + 2) + "|",
            "| degraded input | "
            + " | ".join(f"{inp['psnr'][l]:.2f}" for l in labels)
            + f" | {inp['mean_psnr']:.2f} |",
        ]
        for row in summary["rounds"]:
            x = row["variants"].get("dense" if row["round"] == 0 else variant)
            if x is None:
                continue
            name = f"{row['density']:.3f}" + (" (dense)" if row["round"] == 0 else "")
            out.append(
                f"| {name} | "
                + " | ".join(_pm(x["psnr"][l], seeds) for l in labels)
                + f" | {_pm(x['mean_psnr'], seeds)} |"
            )
    out += ["", "### imp_init minus each control, per test set (dB): mean [95% t-interval]", ""]
    for c in CONTROLS:
        out += [f"**vs {c}**", "", "| density | " + " | ".join(short) + " |", "|---" * (len(labels) + 1) + "|"]
        for row in summary["rounds"][1:]:
            key = f"imp_init - {c}"
            if key in row["paired"]:
                out.append(
                    f"| {row['density']:.3f} | " + " | ".join(_ci(row["paired"][key]["sets"][l]) for l in labels) + " |"
                )
        out.append("")
    out += ["### Verdict", ""]
    t1, t2 = v["ticket_vs_dense"], v["ticket_vs_controls"]
    if t1["status"] == "not measured":
        out.append(f"- {t1['target']}: not measured")
    else:
        out.append(f"- {t1['target']}: **{t1['status'].upper()}**, difference {_ci(t1['difference'])} dB")
    if t2["status"] == "not measured":
        out.append(f"- {t2['target']}: not measured")
    else:
        out.append(
            f"- {t2['target']}: **{t2['status'].upper()}** ({t2['failed']} of {len(t2['checks'])} comparisons miss)"
        )
        for c in t2["checks"]:
            mark = "ok" if c["pass"] else "MISS"
            out.append(f"  - {c['density']:.3f} vs {c['control']}: {_ci(c['difference'])} dB ({mark})")
    holds = v["sets_where_ticket_beats_both_controls"]
    out.append(
        "- test sets where imp_init beats both controls with the 95% interval above 0, by density: "
        + "; ".join(
            f"{SHORT.get(l.split('/')[0], l)}: " + (", ".join(f"{d:.3f}" for d in ds) or "none")
            for l, ds in holds.items()
        )
    )
    return "\n".join(out)


def figure(summary: dict[str, Any], variants: list[str], path: Path, title: str, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {
        "imp_init": ("tab:blue", "o", "IMP ticket, rewind to init"),
        "imp_step": ("tab:green", "s", "IMP ticket, rewind to step K"),
        "random_reinit": ("tab:orange", "^", "random reinit (ticket's mask)"),
        "random_prune": ("tab:red", "v", "random pruning (ticket's layer densities)"),
    }
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.6))
    rows = [r for r in summary["rounds"] if r["round"] > 0]
    xs_all = [r["density"] for r in rows]
    for ax, metric in zip(axes, ("mean_psnr", "mean_ssim")):
        dense = summary["rounds"][0]["variants"]["dense"][metric]
        ax.axhline(dense["mean"], color="black", ls="--", lw=1, label="dense")
        ax.axhline(summary["input"][metric], color="tab:red", ls=":", lw=1.5, label="degraded input")
        for v in variants:
            pts = [(r["density"], r["variants"][v][metric]) for r in rows if v in r["variants"]]
            if not pts:
                continue
            color, marker, label = styles[v]
            xs, ss = zip(*pts)
            ax.errorbar(
                xs,
                [s["mean"] for s in ss],
                yerr=[s["std"] for s in ss] if seeds > 1 else None,
                color=color,
                marker=marker,
                label=label,
                capsize=3,
            )
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xticks(xs_all)
        ax.set_xticklabels([f"{x:.3g}" for x in xs_all])
        ax.minorticks_off()
        ax.set_xlabel("remaining fraction of prunable weights (log)")
        ax.set_ylabel("mean PSNR over test sets (dB)" if metric == "mean_psnr" else "mean SSIM over test sets")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title + (f"; error bars: std over {seeds} seeds" if seeds > 1 else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the steps curve -----------------------------------------------------------------------
def curve(args: argparse.Namespace) -> int:
    """Dense training at several step budgets on the validation split: where does quality flatten?"""
    budgets = (150, 300, 600, 1200, 2400) if not args.smoke else (2, 4)
    rows = []
    count = None if args.threads == "auto" else int(args.threads)
    for steps in budgets:
        opts = {"split": "validation", "degradations": 3}
        config = RunConfig(
            model="mirl",
            size=args.size,
            data_paths=opts,
            rounds=0,
            steps=steps,
            batch_size=args.batch,
            patch_size=args.patch,
            lr=args.lr,
            loss=SAMPLE_LOSS,
            init=SAMPLE_INIT,
            seed=args.seed0,
            device=args.device,
            threads=count,
        ).resolved()
        built = build_run(config)  # the run's own build: seed, initialization, data, trainer
        threads, count = built.threads, built.threads.threads
        model, val = built.model, built.test_sets
        start = time.perf_counter()
        metrics = built.trainer(model, RoundContext(round=0, density=1.0))
        seconds = time.perf_counter() - start
        result = evaluate(model, val, device=args.device)
        gains = {k.split("/")[0]: s.gain for k, s in result.sets.items()}
        rows.append(
            {
                "steps": steps,
                "train_loss": metrics["loss"],
                "loss_last": metrics["loss_last"],
                "mean_gain": statistics.fmean(gains.values()),
                "gains": gains,
                "seconds": seconds,
            }
        )
        print(
            f"  {steps:5d} steps: mean gain {rows[-1]['mean_gain']:+.2f} dB over the validation inputs, "
            f"train loss {metrics['loss']:.4f}, {seconds:.0f} s",
            flush=True,
        )
    out = args.out.with_name(args.out.stem + "_curve.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "lottery_tickets --curve",
                "split": "validation",
                "size": args.size,
                "lr": args.lr,
                "threads": threads.threads,
                "rows": rows,
            },
            indent=2,
        )
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot([r["steps"] for r in rows], [r["mean_gain"] for r in rows], marker="o", color="black", label="mean")
    for t in rows[0]["gains"]:
        ax.plot(
            [r["steps"] for r in rows],
            [r["gains"][t] for r in rows],
            marker=".",
            lw=1,
            alpha=0.7,
            label=SHORT.get(t, t),
        )
    ax.axhline(0, color="tab:red", ls=":", label="degraded input")
    ax.set_xscale("log")
    ax.set_xlabel("optimizer steps (each a full warm-up + cosine schedule)")
    ax.set_ylabel("PSNR gain over the input, validation (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    plt.close(fig)
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.curve:
        return curve(args)
    bench = Bench(args)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    variants = ["imp_init", *CONTROLS] + (["imp_step"] if args.late_rewind is not None else [])
    report_at = reported_rounds(args.rounds, args.report_every)
    lines = 2 if args.late_rewind is not None else 1  # IMP lines, each training every level
    trainings = lines * (1 + args.rounds) + len(CONTROLS) * (len(report_at) - 1)
    evals = 1 + (lines + len(CONTROLS)) * (len(report_at) - 1)
    # Time a few steps and one evaluation, as the run's own estimate does.
    step_s, eval_s = bench.probe.measure(steps=4 if not args.smoke else 2)
    estimate = len(seeds) * (trainings * args.steps * step_s + evals * eval_s)
    params = sum(p.numel() for p in bench.probe.model.parameters())
    n_test = len(next(iter(bench.test_sets.values())))
    densities = [round((1 - args.rate) ** r, 4) for r in report_at]
    print(
        f"lottery tickets: mirl/{args.size} ({params:,} params), sample recipe, {len(bench.labels)} test sets x "
        f"{n_test} "
        f"images; {args.steps} steps per training at lr {args.lr:g}; {args.rounds} rounds of {args.rate:.0%} global; "
        f"reported densities {densities}; seeds {seeds}; {bench.threads.threads} thread(s) ({bench.threads.reason})"
    )
    print(
        f"  {trainings} trainings and {evals} evaluations per seed; measured {step_s * 1000:.0f} ms/step and "
        f"{eval_s:.1f} s/evaluation -> estimated {estimate / 60:.0f} min",
        flush=True,
    )

    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "benchmark": "lottery_tickets",
        "config": {
            "model": f"mirl/{args.size}",
            "params": params,
            "steps": args.steps,
            "lr": args.lr,
            "loss": SAMPLE_LOSS,
            "init": SAMPLE_INIT,
            "patch": args.patch,
            "batch": args.batch,
            "rounds": args.rounds,
            "rate": args.rate,
            "reported_rounds": report_at,
            "densities": densities,
            "seeds": seeds,
            "late_rewind": args.late_rewind,
            "test_images_per_set": n_test,
            "test_degradations": args.test_degradations,
            "threads": bench.threads.threads,
            "device": args.device,
        },
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
        },
        "timing": {"step_seconds": step_s, "eval_seconds": eval_s, "estimate_seconds": estimate},
        "runs": runs,
    }

    def log(seed: int, r: int, density: float, variant: str, result: dict[str, Any]) -> None:
        scored = f"mean PSNR {result['mean_psnr']:6.2f} dB" if "mean_psnr" in result else "(not evaluated)"
        print(
            f"[seed {seed}] round {r:2d} density {density:.3f} {variant:<13} {scored}  loss "
            f"{result['train_loss']:.4f}  "
            f"{(time.perf_counter() - started) / 60:5.1f} min",
            flush=True,
        )

    for seed in seeds:
        rows = run_seed(bench, seed, log)
        runs.append({"seed": seed, "rounds": {r: rows[r] for r in sorted(rows)}})
        out.write_text(json.dumps(report, indent=2))  # partial results survive an interruption
    summary = aggregate([{"rounds": run["rounds"]} for run in runs], bench.labels, variants)
    v = verdict(summary, bench.labels, (1 - args.rate) ** args.rounds)
    report.update(summary=summary, verdict=v)
    report["timing"]["total_seconds"] = time.perf_counter() - started
    out.write_text(json.dumps(report, indent=2))
    head = (
        f"## Lottery tickets: mirl/{args.size}, sample recipe, {args.steps} steps/training, "
        f"{args.rounds} x {args.rate:.0%} global, seeds {seeds}, {n_test} test images per set\n"
    )
    text = head + "\n" + markdown(summary, bench.labels, variants, len(seeds), v) + "\n"
    out.with_suffix(".md").write_text(text)
    figure(
        summary,
        variants,
        out.with_suffix(".png"),
        f"mirl/{args.size}, sample recipe, {args.steps} steps/training, seeds {seeds}",
        len(seeds),
    )
    print("\n" + text)
    print(
        f"total {report['timing']['total_seconds'] / 60:.1f} min (estimated {estimate / 60:.1f}); "
        f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
