"""Cost against quality: every pruning method at densities 0.262 and 0.107, paired against IMP over seeds.

mirl/tiny on the built-in sample recipe, trained as `lotteryir prune` trains it (the configuration of
benchmarks/lottery_tickets.py: identity init, L1, 600 steps at lr 4e-3, patch 48, batch 8). Every
variant is a run of the public API the command line uses (``PruningRun`` with
``RunConfig(method=...)``), in its own run directory under --work, so it runs exactly as
``lotteryir prune --method X`` does, and a stopped benchmark resumes where it stopped (a finished
variant is read from the results file, an unfinished one resumes its run directory):

  imp              rounds of 20% global magnitude pruning, rewind to init (the reference)
  oneshot          train dense, prune to the density at once, rewind to init, train
  gmp              one training, sparsity on Zhu & Gupta's cubic schedule
  early-bird       dense training until the mask settles, prune, rewind, train
  snip, synflow    prune at initialization, train once
  snip+shuffle,    the same masks permuted within each layer (Frankle et al. 2021)
  synflow+shuffle
  lr-rewind        imp keeping the trained weights, the LR schedule replayed (last: it costs as much as imp)

The densities are IMP's after 6 and 10 rounds, 0.8^6 = 0.262 and 0.8^10 = 0.107; the one-shot
methods are given them as --target-density and reach them to the weight. The seed changes the
initialization, the data order and the methods' own draws; all variants of one seed share them, so
differences against IMP are paired. imp and lr-rewind train one run each per seed, read at both
densities (the 0.107 run continues the 0.262 one).

IMP is reused from benchmarks/results/lottery_tickets.json when that file trained exactly what this
benchmark would (every setting checked and printed, and the degraded inputs' PSNR per set must equal
this test set's); otherwise it is trained here. Oneshot's and lr-rewind's round 0 is the same dense
training as IMP's, so their round 0 checks the reuse: the report gives the largest difference.

Cost is what the run's own records say (``lotteryir.runs.run_cost``): trainings, optimizer steps and
training seconds; evaluation is not counted. For a reused IMP the steps are (rounds + 1) x --steps and
the seconds those of its recorded trainings (the unreported rounds' take the mean of the recorded).

Reported per density: each method's mean PSNR over the six sets, the denoising sets' mean apart
(haze swings by dB between variants of one seed and dominates a plain mean, the denoising sets move
by tenths), and per set beside the degraded input; its steps and training time; the paired
differences against IMP with 95% t-intervals, on the means and per set; which method wins where.
The figure plots PSNR against total training steps (log x, std over seeds as error bars; dense and
the degraded input as lines). Results are written after every finished variant (atomically), and the
table and figure are built from whatever is finished, missing cells marked.

    python benchmarks/cost_quality.py --seeds 3          # the full run (~2 h on 2 cores; resumable)
    python benchmarks/cost_quality.py --quick            # 1 seed, density 0.262, no lr-rewind (~15 min)
    python benchmarks/cost_quality.py --smoke --out /tmp/cq.json   # seconds: 3 steps, 2 photos a set
    python benchmarks/cost_quality.py --report-only      # table and figure from the results file
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lottery_tickets import SHORT, paired, spread  # noqa: E402  (the same statistics as that benchmark)
from sample_training import (  # noqa: E402  (the shared training)
    add_training_args,
    empty_tensors,
    environment,
    sample_config,
    training_record,
)

from lotteryir._files import atomic_write_text  # noqa: E402
from lotteryir.engine import evaluate  # noqa: E402
from lotteryir.runs import PruningRun, RunConfig, RunLayout, build_run, read_history, run_cost  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "cost_quality.json"
DEFAULT_WORK = ROOT / "benchmarks" / "work" / "cost_quality"
DEFAULT_REUSE = ROOT / "benchmarks" / "results" / "lottery_tickets.json"
# name -> (method, shuffle_within_layers); in the order they run (the cheap ones first).
VARIANTS: dict[str, tuple[str, bool]] = {
    "imp": ("imp", False),
    "oneshot": ("oneshot", False),
    "gmp": ("gmp", False),
    "early-bird": ("early-bird", False),
    "snip": ("snip", False),
    "synflow": ("synflow", False),
    "snip+shuffle": ("snip", True),
    "synflow+shuffle": ("synflow", True),
    "lr-rewind": ("lr-rewind", False),
}
ROUND_BASED = ("imp", "lr-rewind")  # one run per seed, read at every density
TRAININGS = {"oneshot": 2, "gmp": 1, "early-bird": 2, "snip": 1, "synflow": 1}  # early-bird: at most
DENOISE = ("denoise_15", "denoise_25", "denoise_50")
SMOKE_METHODS = "imp,oneshot,snip+shuffle"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_training_args(p)
    p.add_argument("--rate", type=float, default=0.2, help="imp's and lr-rewind's rate per round")
    p.add_argument(
        "--rounds", default=None, help="the densities, as imp rounds at --rate (default 6,10: 0.262 and 0.107)"
    )
    p.add_argument("--methods", default=None, help=f"comma-separated subset of {', '.join(VARIANTS)} (default all)")
    p.add_argument("--test-degradations", type=int, default=3, help="seeded degradations per test photograph")
    p.add_argument("--threads", default="1", help="CPU threads: N (default 1, as lottery_tickets ran) or auto")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON path; .md and .png go beside it")
    p.add_argument("--work", type=Path, default=None, help="run directories (default: benchmarks/work/cost_quality)")
    p.add_argument(
        "--reuse", default=str(DEFAULT_REUSE), help="lottery_tickets results to take IMP from, if they match; 'none'"
    )
    p.add_argument("--quick", action="store_true", help="1 seed, density 0.262, no lr-rewind (under 20 min)")
    p.add_argument("--smoke", action="store_true", help=f"seconds: 3 steps, 2 photos a set, {SMOKE_METHODS}, 2 rounds")
    p.add_argument("--dry-run", action="store_true", help="print what would run and the time estimate, then stop")
    p.add_argument("--report-only", action="store_true", help="rebuild the table and figure from --out, train nothing")
    p.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        help="results file of another sitting of the same configuration (e.g. other --methods run in parallel "
        "with its own --out): its cells are added to --out; with --report-only, nothing trains",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.rounds = 1, args.rounds or "6"
        args.methods = args.methods or ",".join(v for v in VARIANTS if v != "lr-rewind")
    if args.smoke:
        args.seeds, args.rounds, args.steps, args.patch, args.batch = 1, args.rounds or "2", 3, 32, 4
        args.test_degradations, args.methods = 1, args.methods or SMOKE_METHODS
    args.methods = args.methods or "all"
    if args.methods == "all":
        args.methods = ",".join(VARIANTS)
    args.rounds = args.rounds or "6,10"
    try:
        args.rounds = sorted({int(r) for r in str(args.rounds).split(",")})
    except ValueError:
        p.error(f"--rounds must be comma-separated integers, got {args.rounds!r}")
    if not args.rounds or args.rounds[0] < 1:
        p.error("--rounds must be at least 1")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in VARIANTS]
    if unknown:
        p.error(f"--methods: unknown {', '.join(unknown)}; available: {', '.join(VARIANTS)}")
    if "imp" not in methods:
        methods.insert(0, "imp")  # the reference every difference is taken against
    args.methods = [v for v in VARIANTS if v in methods]
    if args.threads != "auto":
        try:
            args.threads = int(args.threads)
        except ValueError:
            p.error(f"--threads must be 'auto' or a positive integer, got {args.threads!r}")
    else:
        args.threads = None
    if args.work is None:
        args.work = DEFAULT_WORK if args.out.resolve() == DEFAULT_OUT else args.out.with_name(args.out.stem + "_work")
    return args


def dkey(density: float) -> str:
    return f"{density:.4f}"


# -- what runs -----------------------------------------------------------------------------
@dataclass
class Job:
    """One variant of one seed up to one density: a run directory and the rounds it is read at."""

    seed: int
    variant: str
    rounds: int  # imp rounds whose density this job reaches (round-based variants train that many)

    @property
    def round_based(self) -> bool:
        return self.variant in ROUND_BASED

    def directory(self, work: Path, rate: float) -> Path:
        name = self.variant if self.round_based else f"{self.variant}-{dkey((1 - rate) ** self.rounds)}"
        return work / f"seed{self.seed}" / name


def jobs(args: argparse.Namespace) -> Iterator[Job]:
    """Every job in running order: imp first at the lowest density, then the one-shot methods by seed and
    density, then lr-rewind and imp to their further densities (each continuing its own run)."""
    seeds = range(args.seed0, args.seed0 + args.seeds)
    first, rest = args.rounds[0], args.rounds[1:]
    for s in seeds:
        yield Job(s, "imp", first)
    for s in seeds:
        for r in args.rounds:
            for v in args.methods:
                if v not in ROUND_BASED:
                    yield Job(s, v, r)
    for v in ("lr-rewind", "imp") if "lr-rewind" in args.methods else ("imp",):
        for r in [first, *rest] if v == "lr-rewind" else rest:
            for s in seeds:
                yield Job(s, v, r)


def run_config(args: argparse.Namespace, job: Job) -> RunConfig:
    """The `lotteryir prune` configuration of a job: the sample recipe and mirl, as lottery_tickets trains."""
    method, shuffle = VARIANTS[job.variant]
    fixed = {"target_density": (1 - args.rate) ** job.rounds} if not job.round_based else {"rounds": job.rounds}
    opts: dict[str, Any] = {"degradations": args.test_degradations, **({"max_images": 2} if args.smoke else {})}
    return sample_config(
        args,
        job.seed,
        data_paths=opts,
        rate=args.rate,
        method=method,
        shuffle_within_layers=shuffle,
        **fixed,
    )


def continued(job: Job, directory: Path) -> Job:
    """A round-based job whose run was already taken further (by another sitting with another --out sharing
    --work) continues to that run's rounds: opening it with fewer rounds would be refused as another
    configuration, and the rounds it already holds are read, not retrained."""
    config = RunLayout(directory).config
    if not job.round_based or not config.is_file():
        return job
    try:
        rounds = int(json.loads(config.read_text()).get("rounds") or 0)
    except (ValueError, TypeError, AttributeError):  # not a run's config: let PruningRun name the problem
        return job
    return Job(job.seed, job.variant, max(job.rounds, rounds))


def dense_differences(results: dict[str, Any]) -> list[float]:
    """Per finished oneshot / lr-rewind run whose directory is here: the largest |dPSNR| per set between
    its round 0 and the dense network of the same seed (both train the same dense round)."""
    out = []
    for per_seed in results.values():
        dense = per_seed.get("dense", {}).get("dense")
        if not dense:
            continue
        for variant in ("oneshot", "lr-rewind"):
            for c in per_seed.get(variant, {}).values():
                run_dir = Path(c["source"])
                if not RunLayout(run_dir).history.is_file():
                    continue
                mine = round0_cell(read_history(run_dir), run_dir)["psnr"]
                out.append(max(abs(mine[k] - dense["psnr"][k]) for k in mine))
    return out


def labels_of(entry: dict[str, Any]) -> list[str]:
    return list(entry["eval"])


def cell(entry: dict[str, Any], history: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """One variant at one density, from its run's history up to ``entry`` (that round's scores, all rounds' cost)."""
    ev = entry["eval"]
    upto = [h for h in history if h["round"] <= entry["round"]]
    out = {
        "round": entry["round"],
        "density": entry["density"],
        "psnr": {k: v["psnr"] for k, v in ev.items()},
        "ssim": {k: v["ssim"] for k, v in ev.items()},
        "input_psnr": {k: v["input_psnr"] for k, v in ev.items()},
        "mean_psnr": entry["mean_psnr"],
        "mean_ssim": entry["mean_ssim"],
        "cost": run_cost(upto),
        "source": str(run_dir),
    }
    if "method" in entry:
        out["method"] = entry["method"]
    out.update(empty_tensors(run_dir, entry))  # a tensor pruned to nothing cuts the network (the report warns)
    return out


def round0_cell(history: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    return cell(history[0], history, run_dir)


# -- reusing lottery_tickets' IMP ----------------------------------------------------------
def input_psnr(test_sets: Any, device: str) -> dict[str, float]:
    """The degraded inputs' PSNR per set: the test set's fingerprint (no network involved)."""
    result = evaluate(torch.nn.Identity(), test_sets, device=device)
    return {k: math.nan if s.input_psnr is None else s.input_psnr for k, s in result.sets.items()}


def reuse_checks(args: argparse.Namespace, source: dict[str, Any], inputs: dict[str, float], n_test: int) -> list:
    """(setting, lottery_tickets' value, this benchmark's, equal) for everything that defines IMP's results."""
    c = source.get("config", {})
    want = training_record(args, n_test)
    checks = [(k, c.get(k), v, c.get(k) == v) for k, v in want.items()]
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    checks.append(("seeds", c.get("seeds"), seeds, set(seeds) <= set(c.get("seeds") or [])))
    rounds = c.get("reported_rounds") or []
    checks.append(("reported_rounds", rounds, [0, *args.rounds], {0, *args.rounds} <= set(rounds)))
    theirs = None
    try:
        theirs = source["runs"][0]["rounds"]["0"]["variants"]["dense"]["input_psnr"]
    except (KeyError, IndexError, TypeError):
        pass
    same = theirs is not None and set(theirs) == set(inputs) and all(abs(theirs[k] - inputs[k]) < 1e-9 for k in inputs)
    checks.append(("degraded inputs' PSNR per set", theirs, inputs, same))
    return [{"setting": k, "lottery_tickets": a, "here": b, "equal": ok} for k, a, b, ok in checks]


def reused_cells(source: dict[str, Any], seed: int, rounds: int, steps: int, path: Path) -> dict[str, Any]:
    """IMP at ``rounds`` and the dense network, from lottery_tickets' records of one seed."""
    run = next(r for r in source["runs"] if r["seed"] == seed)
    recorded = {int(r): row for r, row in run["rounds"].items()}

    def one(row: dict[str, Any], variant: str, r: int) -> dict[str, Any]:
        x = row["variants"][variant]
        secs = [recorded[q]["variants"]["dense" if q == 0 else "imp_init"]["train_seconds"] for q in recorded if q <= r]
        missing = r + 1 - len(secs)
        return {
            "round": r,
            "density": row["density"],
            "psnr": x["psnr"],
            "ssim": x["ssim"],
            "input_psnr": x["input_psnr"],
            "mean_psnr": x["mean_psnr"],
            "mean_ssim": x["mean_ssim"],
            "cost": {
                "trainings": r + 1,
                "steps": (r + 1) * steps,
                "train_seconds": sum(secs) + missing * statistics.fmean(secs),
                "estimated_seconds_of_rounds": missing,
            },
            "source": f"{path} (seed {seed})",
        }

    return {"imp": one(recorded[rounds], "imp_init", rounds), "dense": one(recorded[0], "dense", 0)}


# -- aggregation ---------------------------------------------------------------------------
def set_name(label: str) -> str:
    return label.split("/")[0]


def denoise_mean(psnr: dict[str, float]) -> float:
    return statistics.fmean(v for k, v in psnr.items() if set_name(k) in DENOISE)


def metrics_of(c: dict[str, Any]) -> dict[str, float]:
    """The numbers compared between variants: the means and each set."""
    return {"mean": c["mean_psnr"], "denoise": denoise_mean(c["psnr"]), **c["psnr"]}


def aggregate(report: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Per density and variant: spreads over seeds, cost, and the paired differences against IMP."""
    seeds = [str(s) for s in range(args.seed0, args.seed0 + args.seeds)]
    res = report["results"]
    dense = [res[s]["dense"] for s in seeds if s in res and "dense" in res[s]]
    summary: dict[str, Any] = {"densities": []}
    first = next((c for s in seeds for v in res.get(s, {}).values() for c in v.values()), None)
    if first is not None:  # every variant scores the same degraded inputs
        inp = first["input_psnr"]
        summary["input"] = {"psnr": inp, "mean": statistics.fmean(inp.values()), "denoise": denoise_mean(inp)}
    if dense:
        summary["dense"] = {
            "n": len(dense),
            "psnr": {k: spread([metrics_of(d["dense"])[k] for d in dense]) for k in metrics_of(dense[0]["dense"])},
            "steps": spread([d["dense"]["cost"]["steps"] for d in dense]),
        }
    for r in args.rounds:
        key = dkey((1 - args.rate) ** r)
        row: dict[str, Any] = {"rounds": r, "density": (1 - args.rate) ** r, "variants": {}, "paired": {}, "wins": {}}
        for v in args.methods:
            cells = {s: res[s][v][key] for s in seeds if key in res.get(s, {}).get(v, {})}
            if not cells:
                continue
            ms = [metrics_of(c) for c in cells.values()]
            row["variants"][v] = {
                "n": len(cells),
                "density": statistics.fmean(c["density"] for c in cells.values()),
                "psnr": {k: spread([m[k] for m in ms]) for k in ms[0]},
                "steps": spread([c["cost"]["steps"] for c in cells.values()]),
                "trainings": spread([c["cost"]["trainings"] for c in cells.values()]),
                "train_seconds": spread([c["cost"]["train_seconds"] for c in cells.values()]),
                "empty_tensors": max((len(c.get("empty_tensors", [])) for c in cells.values()), default=0),
                "tensors": max((c.get("tensors", 0) for c in cells.values()), default=0),
            }
            imp = {s: res[s]["imp"][key] for s in cells if key in res[s].get("imp", {})}
            if v != "imp" and imp:
                both = sorted(imp)
                a = [metrics_of(cells[s]) for s in both]
                b = [metrics_of(imp[s]) for s in both]
                row["paired"][v] = {k: paired([x[k] for x in a], [y[k] for y in b]) for k in a[0]}
        names = list(row["variants"])
        for k in next(iter(row["variants"].values()))["psnr"] if names else []:
            best = max(names, key=lambda n: row["variants"][n]["psnr"][k]["mean"])
            better = [n for n, d in row["paired"].items() if d[k]["low"] > 0]
            worse = [n for n, d in row["paired"].items() if d[k]["high"] < 0]
            row["wins"][k] = {"best": best, "above_imp": better, "below_imp": worse}
        row["verdict"] = verdict(row, args.seeds)
        summary["densities"].append(row)
    return summary


DENSE_TOLERANCE_DB = 0.01  # the same training twice on one CPU thread scores the same
TOLERANCE_DB = 0.1  # "IMP's quality": the mean difference above -0.1 dB and its interval reaching 0
COST_SHARE = 0.25  # "cheap": at most a quarter of IMP's optimizer steps


def verdict(row: dict[str, Any], seeds: int) -> dict[str, Any]:
    """The cheapest variant (fewest steps) with IMP's quality at a quarter of its steps or less, on the
    six-set mean and on the denoising mean; None where no finished variant qualifies (all seeds needed)."""
    vs, imp = row["variants"], row["variants"].get("imp")
    out: dict[str, Any] = {"tolerance_db": TOLERANCE_DB, "cost_share": COST_SHARE}
    for k in ("mean", "denoise"):
        ok = []
        for v, d in row["paired"].items():
            x = vs[v]
            if imp is None or x["n"] < seeds or v.endswith("+shuffle"):  # a control is not a method to pick
                continue
            cheap = x["steps"]["mean"] <= COST_SHARE * imp["steps"]["mean"]
            close = d[k]["mean"] >= -TOLERANCE_DB and (d[k]["n"] < 2 or d[k]["high"] >= 0)
            if cheap and close:
                ok.append((x["steps"]["mean"], -d[k]["mean"], v))
        out[k] = min(ok)[2] if ok else None
    return out


# -- presentation --------------------------------------------------------------------------
def _pm(s: dict[str, float], n: int, digits: int = 2) -> str:
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if n > 1 else "")


def _ci(d: dict[str, float]) -> str:
    if d["n"] < 2:
        return f"{d['mean']:+.2f} (1 seed)"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def _col(k: str) -> str:
    return {"mean": "mean", "denoise": "denoise mean"}.get(k, SHORT.get(set_name(k), k))


def markdown(summary: dict[str, Any], report: dict[str, Any], args: argparse.Namespace) -> str:
    seeds = args.seeds
    c = report["config"]
    out = [
        f"## Cost against quality: mirl/{args.size}, sample recipe, {args.steps} steps/training, "
        f"seeds {c['seeds']}, {c.get('test_images_per_set', '?')} test images per set",
        "",
        f"IMP: {report.get('reuse', {}).get('summary', 'trained here')}. `-` marks a variant not finished yet; "
        f"(k/{seeds}) one finished for k of the {seeds} seeds. Cost: optimizer steps and training minutes, "
        "evaluation not counted. Differences are the variant minus IMP, paired by seed: mean [95% t-interval].",
    ]
    check = report.get("dense_check")
    if check is not None:
        out += ["", f"Round 0 of oneshot / lr-rewind against IMP's dense network: largest |ΔPSNR| {check:.2g} dB."]
        if check > DENSE_TOLERANCE_DB and report.get("reuse", {}).get("reused"):
            out += [
                "",
                "**Warning:** the reused IMP is not this benchmark's training (its dense round 0 differs from the "
                "one trained here), so differences against it carry that offset; the next sitting trains IMP here.",
            ]
    stale = (report.get("stale_reuse") or {}).get("dense_check")
    if stale is not None:
        out += [
            "",
            f"An earlier sitting reused IMP from lottery_tickets.json; the dense round 0 trained here differed from "
            f"its dense network by up to {stale:.2f} dB on a set (another training), so IMP is trained here.",
        ]
    inp, dense = summary.get("input"), summary.get("dense")
    for row in summary["densities"]:
        vs = row["variants"]
        labels = [k for k in (next(iter(vs.values()))["psnr"] if vs else []) if k not in ("mean", "denoise")]
        out += [
            "",
            f"### Density {row['density']:.3f} ({row['rounds']} imp rounds)",
            "",
            "| variant | mean PSNR | denoise mean | steps | train min | trainings | Δ mean vs imp | Δ denoise vs imp |",
            "|---|---|---|---|---|---|---|---|",
        ]
        if inp:
            out.append(f"| degraded input | {inp['mean']:.2f} | {inp['denoise']:.2f} | 0 | 0 | 0 | | |")
        if dense:
            p = dense["psnr"]
            out.append(
                f"| dense | {_pm(p['mean'], dense['n'])} | {_pm(p['denoise'], dense['n'])} | "
                f"{dense['steps']['mean']:.0f} | | 1 | | |"
            )
        for v in args.methods:
            if v not in vs:
                out.append(f"| {v} | - | - | - | - | - | - | - |")
                continue
            x, d = vs[v], row["paired"].get(v)
            part = f" ({x['n']}/{seeds})" if x["n"] < seeds else ""
            out.append(
                f"| {v}{part} | {_pm(x['psnr']['mean'], x['n'])} | {_pm(x['psnr']['denoise'], x['n'])} | "
                f"{x['steps']['mean']:.0f} | {x['train_seconds']['mean'] / 60:.1f} | {x['trainings']['mean']:.1f} | "
                + (f"{_ci(d['mean'])} | {_ci(d['denoise'])} |" if d else " | |")
            )
        cut = [
            f"{v} ({vs[v]['empty_tensors']} of {vs[v]['tensors']})"
            for v in args.methods
            if vs.get(v, {}).get("empty_tensors")
        ]
        if cut:
            out += [
                "",
                "**Warning:** tensors pruned to nothing (the network is cut there; its scores may be the input's): "
                + ", ".join(cut),
            ]
        if not labels:
            continue
        out += [
            "",
            f"PSNR per test set (dB), mean ± std over seeds, density {row['density']:.3f}:",
            "",
            "| variant | " + " | ".join(_col(k) for k in labels) + " |",
            "|---" * (len(labels) + 1) + "|",
        ]
        if inp:
            out.append("| degraded input | " + " | ".join(f"{inp['psnr'][k]:.2f}" for k in labels) + " |")
        if dense:
            out.append("| dense | " + " | ".join(_pm(dense["psnr"][k], dense["n"]) for k in labels) + " |")
        for v in args.methods:
            cells = [_pm(vs[v]["psnr"][k], vs[v]["n"]) for k in labels] if v in vs else ["-"] * len(labels)
            out.append(f"| {v} | " + " | ".join(cells) + " |")
        out += [
            "",
            f"Minus IMP per test set (dB), paired: mean [95% t-interval], density {row['density']:.3f}:",
            "",
            "| variant | " + " | ".join(_col(k) for k in labels) + " |",
            "|---" * (len(labels) + 1) + "|",
        ]
        for v in args.methods:
            if v == "imp":
                continue
            d = row["paired"].get(v)
            out.append(f"| {v} | " + " | ".join(_ci(d[k]) if d else "-" for k in labels) + " |")
        pick = row.get("verdict", {})
        out += [
            "",
            f"Cheapest method with IMP's quality at density {row['density']:.3f} (mean difference above "
            f"-{TOLERANCE_DB} dB, interval reaching 0, at most {COST_SHARE:.0%} of IMP's steps, all seeds "
            f"finished; controls excluded): six-set mean: **{pick.get('mean') or 'none'}**; denoising mean: "
            f"**{pick.get('denoise') or 'none'}**.",
        ]
        out += ["", f"Who wins where (density {row['density']:.3f}; above/below IMP: the 95% interval excludes 0):", ""]
        for k, w in row["wins"].items():
            above = ", ".join(w["above_imp"]) or "none"
            below = ", ".join(w["below_imp"]) or "none"
            out.append(f"- {_col(k)}: best {w['best']}; above imp: {above}; below imp: {below}")
    return "\n".join(out) + "\n"


def figure(summary: dict[str, Any], args: argparse.Namespace, path: Path) -> None:
    """PSNR against total training steps (log x): the six-set mean and the denoising mean, per density."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["densities"]
    fig, axes = plt.subplots(2, max(1, len(rows)), figsize=(6.2 * max(1, len(rows)), 8.4), squeeze=False)
    colors = dict(zip(VARIANTS, (f"C{i}" for i in range(10))))
    markers = dict(zip(VARIANTS, "os^vDP<>X"))
    for j, row in enumerate(rows):
        for i, (k, what) in enumerate((("mean", "mean PSNR over the six sets"), ("denoise", "denoising sets' mean"))):
            ax = axes[i][j]
            if "dense" in summary:
                ax.axhline(summary["dense"]["psnr"][k]["mean"], color="black", ls="--", lw=1, label="dense")
            if "input" in summary:
                ax.axhline(summary["input"][k], color="tab:red", ls=":", lw=1.5, label="degraded input")
            for v, x in row["variants"].items():
                many = x["n"] > 1
                ax.errorbar(
                    [x["steps"]["mean"]],
                    [x["psnr"][k]["mean"]],
                    xerr=[x["steps"]["std"]] if many else None,
                    yerr=[x["psnr"][k]["std"]] if many else None,
                    color=colors[v],
                    marker=markers[v],
                    ls="none",
                    capsize=3,
                    label=v + (f" ({x['n']} seed{'s' if x['n'] > 1 else ''})" if x["n"] < args.seeds else ""),
                )
            ax.set_xscale("log")
            ax.set_xlabel("total optimizer steps (log)")
            ax.set_ylabel(f"{what} (dB)")
            ax.set_title(f"density {row['density']:.3f}", fontsize=10)
            ax.grid(True, alpha=0.3, which="both")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    fig.suptitle(
        f"mirl/{args.size}, sample recipe, {args.steps} steps/training; error bars: std over seeds", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def write_outputs(report: dict[str, Any], args: argparse.Namespace) -> str:
    """Summary, JSON, table and figure from whatever is finished (each written atomically)."""
    # Every method that has run in any sitting is reported, not only this sitting's --methods.
    args = argparse.Namespace(**{**vars(args), "methods": report.get("config", {}).get("methods", args.methods)})
    report["summary"] = aggregate(report, args)
    atomic_write_text(args.out, json.dumps(report, indent=2))
    text = markdown(report["summary"], report, args)
    atomic_write_text(args.out.with_suffix(".md"), text)
    png = args.out.with_suffix(".png")
    tmp = png.with_name(f".{png.name}.tmp")
    figure(report["summary"], args, tmp)
    os.replace(tmp, png)
    return text


def merge(report: dict[str, Any], others: list[Path]) -> None:
    """Add the cells of other results files of the same configuration (methods may differ) to ``report``."""
    mine = {k: v for k, v in report.get("config", {}).items() if k not in ("seeds", "methods")}
    for path in others:
        if not path.is_file():
            raise ValueError(f"--merge {path}: no such file")
        other = json.loads(path.read_text())
        theirs = {k: v for k, v in other.get("config", {}).items() if k not in ("seeds", "methods")}
        if theirs != mine:
            diff = [k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)]
            raise ValueError(f"--merge {path}: another configuration ({', '.join(sorted(diff))} differ)")
        for seed, variants in other.get("results", {}).items():
            for variant, cells in variants.items():
                report["results"].setdefault(seed, {}).setdefault(variant, {}).update(cells)
        c = report["config"]
        ran = {*c.get("methods", []), *other["config"].get("methods", [])}
        c["methods"] = [v for v in VARIANTS if v in ran]
        c["seeds"] = sorted({*c.get("seeds", []), *other["config"].get("seeds", [])})
        report.setdefault("merged", []).append(str(path))


# -- main ----------------------------------------------------------------------------------
def config_record(args: argparse.Namespace, n_test: int) -> dict[str, Any]:
    """What defines the results (a resumed benchmark must match it; --seeds may grow)."""
    return {
        **training_record(args, n_test),
        "rounds": args.rounds,
        "densities": [(1 - args.rate) ** r for r in args.rounds],
        "methods": args.methods,
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
        try:
            merge(report, args.merge)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(write_outputs(report, args))
        return 0

    # One build for the test set's fingerprint and the time estimate; every variant builds its own run.
    t_build = time.perf_counter()
    probe = build_run(run_config(args, Job(args.seed0, "oneshot", args.rounds[0])).resolved())
    build_s = time.perf_counter() - t_build  # every variant's run builds the same, once per sitting
    n_test = len(next(iter(probe.test_sets.values())))  # type: ignore[arg-type]
    inputs = input_psnr(probe.test_sets, args.device)
    config = config_record(args, n_test)
    if args.out.is_file():
        report = json.loads(args.out.read_text())
        # --seeds may grow and --methods change between sittings: each cell is one variant of one seed.
        old = {k: v for k, v in report.get("config", {}).items() if k not in ("seeds", "methods")}
        if old != {k: v for k, v in config.items() if k != "methods"}:
            diff = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in config.items() if k != "methods" and old.get(k) != v]
            print(
                f"error: {args.out} holds results of another configuration ({'; '.join(diff[:3])}); "
                "use another --out (and --work)",
                file=sys.stderr,
            )
            return 2
        print(f"resuming {args.out}: {sum(len(c) for s in report['results'].values() for c in s.values())} cells done")
    else:
        report = {"benchmark": "cost_quality", "results": {}}
    ran = {*report.get("config", {}).get("methods", []), *args.methods}
    report["config"] = {
        **config,
        "seeds": sorted({*report.get("config", {}).get("seeds", []), *seeds}),
        "methods": [v for v in VARIANTS if v in ran],
    }
    report["environment"] = environment()
    results: dict[str, Any] = report["results"]

    # IMP from lottery_tickets when it trained exactly this. Equal settings are not enough: the dense
    # round 0 that oneshot and lr-rewind train here must equal lottery_tickets' (the code may have changed
    # since), and once it has been seen to differ the reused cells are dropped and IMP trains here.
    source = None
    # Once a reuse was refused (stale_reuse) it stays refused: later checks compare with IMP trained here.
    seen = max(report.get("dense_check") or 0.0, (report.get("stale_reuse") or {}).get("dense_check") or 0.0)
    stale = seen > DENSE_TOLERANCE_DB
    if args.reuse != "none" and Path(args.reuse).is_file():
        source = json.loads(Path(args.reuse).read_text())
        checks = reuse_checks(args, source, inputs, n_test)
        checks.append(
            {
                "setting": "dense round 0 trained here (max |dPSNR| per set, dB)",
                "lottery_tickets": 0.0,
                "here": seen if stale else report.get("dense_check"),
                "equal": not stale,
            }
        )
        reuse = all(c["equal"] for c in checks)
        print(f"IMP from {args.reuse}? {'yes' if reuse else 'no'}; setting by setting:")
        for c in checks:
            mine = c["here"] if not isinstance(c["here"], dict) else "(per set)"
            theirs = c["lottery_tickets"] if not isinstance(c["lottery_tickets"], dict) else "(per set)"
            print(f"  {'same' if c['equal'] else 'DIFFERENT'}: {c['setting']} = {theirs} there, {mine} here")
        report["reuse"] = {
            "source": str(args.reuse),
            "reused": reuse,
            "checks": checks,
            "summary": f"reused from {Path(args.reuse).name} (every setting equal)"
            if reuse
            else "trained here (lottery_tickets' settings differ: "
            + ", ".join(c["setting"] for c in checks if not c["equal"])
            + ")",
        }
        if not reuse:
            source = None
    else:
        why = "--reuse none" if args.reuse == "none" else f"--reuse {args.reuse}: no such file"
        report["reuse"] = {"reused": False, "summary": f"trained here ({why})"}
    if source is None:  # cells an earlier sitting reused are not this benchmark's training
        dropped = 0
        for per_seed in results.values():
            for variant in ("imp", "dense"):
                cells = per_seed.get(variant, {})
                for key in [k for k, c in cells.items() if "lottery_tickets" in str(c.get("source", ""))]:
                    del cells[key]
                    dropped += 1
                if variant in per_seed and not cells:
                    del per_seed[variant]
        if dropped:  # the check compared with the reused dense network: keep it as the reason, start afresh
            report["stale_reuse"] = {"dense_check": report.pop("dense_check", None), "cells_dropped": dropped}
    if source is not None:
        for s in seeds:
            for r in args.rounds:
                got = reused_cells(source, s, r, args.steps, Path(args.reuse))
                results.setdefault(str(s), {}).setdefault("imp", {})[dkey((1 - args.rate) ** r)] = got["imp"]
                results[str(s)]["dense"] = {"dense": got["dense"]}

    todo = [
        j
        for j in jobs(args)
        if dkey((1 - args.rate) ** j.rounds) not in results.get(str(j.seed), {}).get(j.variant, {})
    ]
    # Trainings still to run: a round-based job trains the rounds its run has not finished.
    trainings = 0
    reached: dict[tuple[int, str], int] = {}
    for j in todo:
        if j.round_based:
            done = reached.get((j.seed, j.variant), -1)
            trainings += j.rounds - done
            reached[(j.seed, j.variant)] = j.rounds
        else:
            trainings += TRAININGS[VARIANTS[j.variant][0]]
    step_s, eval_s = probe.measure(steps=4 if not args.smoke else 2)
    estimate = trainings * (args.steps * step_s + eval_s) + len(todo) * build_s
    load = os.getloadavg()
    params = sum(p.numel() for p in probe.model.parameters())
    print(
        f"cost vs quality: mirl/{args.size} ({params:,} params), sample recipe, {len(inputs)} test sets x {n_test} "
        f"images; {args.steps} steps/training; densities {[round(d, 4) for d in config['densities']]}; "
        f"seeds {seeds}; methods {', '.join(args.methods)}; {probe.threads.threads} thread(s)"
    )
    print(
        f"  {len(todo)} variant(s) to run, about {trainings} trainings and evaluations; measured "
        f"{step_s * 1000:.0f} ms/step, {eval_s:.1f} s/evaluation and {build_s:.1f} s/run build (load average "
        f"{load[0]:.2f}) -> estimated {estimate / 60:.1f} min (early-bird counted as 2 full trainings)",
        flush=True,
    )
    if args.dry_run:
        return 0
    report["timing"] = {
        "step_seconds": step_s,
        "eval_seconds": eval_s,
        "build_seconds": build_s,
        "estimate_seconds": estimate,
        "load_average": load[0],
        "trainings_estimated": trainings,
    }
    del probe
    write_outputs(report, args)

    started = time.perf_counter()
    dense_diffs: list[float] = []
    for n, job in enumerate(todo, start=1):
        directory = job.directory(args.work, args.rate)
        t0 = time.perf_counter()
        history = PruningRun(directory, run_config(args, continued(job, directory))).run()
        seed_res = results.setdefault(str(job.seed), {})
        for entry in history:  # imp and lr-rewind: every reported round reached; the others: their last
            if job.round_based:
                r = entry["round"] if entry["round"] in args.rounds else None
            else:
                r = job.rounds if entry is history[-1] else None
            if r is None:
                continue
            seed_res.setdefault(job.variant, {})[dkey((1 - args.rate) ** r)] = cell(entry, history, directory)
        if job.variant == "imp" and "dense" not in seed_res:
            seed_res["dense"] = {"dense": round0_cell(history, directory)}
        if job.variant in ("oneshot", "lr-rewind") and "dense" in seed_res:  # the same dense training as imp's
            mine, theirs = round0_cell(history, directory)["psnr"], seed_res["dense"]["dense"]["psnr"]
            dense_diffs.append(max(abs(mine[k] - theirs[k]) for k in mine))
            report["dense_check"] = max(dense_diffs + [report.get("dense_check") or 0.0])
        got = seed_res.get(job.variant, {}).get(dkey((1 - args.rate) ** job.rounds))
        write_outputs(report, args)
        score = f"mean PSNR {got['mean_psnr']:.2f} dB, {got['cost']['steps']} steps" if got else "(no cell?)"
        print(
            f"[{n}/{len(todo)}] seed {job.seed} {job.variant:<16} density {(1 - args.rate) ** job.rounds:.3f}: "
            f"{score}; {time.perf_counter() - t0:.0f} s, {(time.perf_counter() - started) / 60:.1f} min in all",
            flush=True,
        )
    if (trained_here := dense_differences(results)) and source is None:
        # Every finished oneshot / lr-rewind run against the dense round IMP trained here, not only this
        # sitting's: a sitting that trains IMP after the others ran still checks them.
        report["dense_check"] = max(trained_here)
    report["timing"]["total_seconds"] = time.perf_counter() - started
    text = write_outputs(report, args)
    print("\n" + text)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')}, {args.out.with_suffix('.png')}; runs in {args.work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
