"""Is the ticket stable? Linear mode connectivity (Frankle et al. 2020) of mirl/tiny, dense and IMP tickets.

mirl/tiny on the built-in sample recipe, trained as benchmarks/lottery_tickets.py and cost_quality.py
train it (identity init, L1, 600 steps at lr 4e-3, patch 48, batch 8, 20% global magnitude pruning
per round, rewind to init, 1 thread). Per seed (0, 1, 2):

  imp        one IMP run (``PruningRun``) to round 10, in its own directory under --work; it gives
             the dense network (round 0), the ticket at 0.8^6 = 0.262 (round 6) and at 0.8^10 = 0.107
             (round 10), each trained and scored by the run itself
  stability  for each of those networks and each rewind step k = 0, 12, 30, 60 (0, 2%, 5%, 10% of a
             training): ``lotteryir.analysis.run_stability`` (what ``lotteryir stability`` runs):
             round 0 of the run replayed to step k, two copies trained from there with the
             network's mask and two other data orders for 600 - k steps, the network scored at 11
             points of the straight line between them; the PSNR barrier (mean over the six sets
             and per set) and the smallest stable k (barrier <= 0.1 dB, the library's default)
  late       the ticket at 0.107 retrained from the smallest stable k of that ticket (its mask, the
             weights at step k of the run's replayed round 0, every tensor rewound, as the run's
             rounds rewind) exactly as the run trained its round 10 (the same trainer, round and data
             order, full round length, as a ``--rewind step:K`` run trains its rounds), scored on
             the full test sets, against the run's own round 10 (rewound to init), paired over seeds
             with a 95% t-interval. When k = 0 is stable the retrained ticket is the run's round 10 itself (nothing
             trains); when no k is stable it is retrained from the largest k measured, and the
             tables say so.
  reinit     beside both, random reinit at 0.107: the round-10 mask on a fresh initialization,
             trained as the run's ``random_reinit`` control trains (its seed, round and trainer).
             It is taken from benchmarks/results/lottery_tickets.json instead when every setting
             and the test inputs match and that run's dense round scores what the IMP run's round
             0 scores here (cost_quality.py's checks); otherwise it trains here (one training).

The budget, and what is cut for it (one optimizer step ~0.15-0.19 s at 1 thread here, an
evaluation of the six full test sets ~19 s): per seed the IMP run is 11 trainings and
evaluations (~24 min), each (network, k) cell two trainings of 600 - k steps (~3.7 min) plus its
path, the late ticket one training. The whole plan is ~75 min of one core per seed, ~230 min for
three, so:

  - the path is scored on --path-images images of each test set (default 2 of 15, evenly spaced;
    11 points cost ~30 s instead of 3.5 min); the endpoints' and the late ticket's full-set scores
    come from the runs themselves, and the path's degraded-input PSNR is that of the same images;
  - 11 points, the fewest the library allows;
  - nothing is trained twice: the dense network and the tickets are the IMP run's own, the late
    ticket at k = 0 is the run's round 10, random reinit is lottery_tickets.json's when it matches;
  - the copies keep their full length (600 - k): shorter copies end far from converged (the
    lottery_tickets --curve: 300 steps gain 2.2 dB over the input, 600 steps 3.5), which would
    measure another thing;
  - --workers 2 (default) runs two units at once, one thread each, on the machine's two cores (the
    units are independent processes; a unit's result does not depend on the other). A 1-thread
    step took 148 ms alone (lottery_tickets.json) and 187 ms beside another 1-thread job, so two
    workers give ~1.6x; the three-seed plan fits 120 min only that way (--dry-run: 105-117 min at
    173-176 ms/step); on one worker it takes 3.3-3.9 h.
    --dry-run prints the plan's minutes from a measured step for 1 and for --workers workers.

Resumable: each seed's IMP run is a run directory (a killed one resumes where it stopped), each
(seed, network, k) path and each seed's late ticket is written into the results file as soon as it
finishes (atomically), so a kill loses at most the units in flight; a rerun skips every finished
unit. Tables (.md) and the figure (.png: mean PSNR along the path, one line per k, one panel per
network, averaged over seeds) are rebuilt from whatever is finished.

    python benchmarks/stability.py --seeds 3          # the full run (~2 h on 2 cores with 2 workers)
    python benchmarks/stability.py --quick            # 1 seed, the ticket at 0.64 (2 rounds), k = 0, 60
    python benchmarks/stability.py --dry-run          # the plan and its minutes, nothing trains
    python benchmarks/stability.py --smoke --out /tmp/st.json   # seconds: the test suite's run
    python benchmarks/stability.py --report-only      # tables and figure from the results file
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cost_quality import DENSE_TOLERANCE_DB, input_psnr, reuse_checks  # noqa: E402  (that benchmark's reuse checks)
from lottery_tickets import SHORT, paired, spread  # noqa: E402  (the same statistics)
from sample_training import add_training_args, environment, sample_config, training_record  # noqa: E402  (the shared training)

from lotteryir._files import atomic_write, atomic_write_text  # noqa: E402
from lotteryir.analysis import (  # noqa: E402
    DEFAULT_THRESHOLD,
    MIN_POINTS,
    run_stability,
    smallest_stable,
    states_at_steps,
)
from lotteryir.analysis.stability import start_from  # noqa: E402
from lotteryir.pruning import Mask, RoundContext, attach_masks, reinitialize  # noqa: E402
from lotteryir.runs import PruningRun, RunConfig, RunLayout, build_run, read_config, read_history  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "stability.json"
DEFAULT_WORK = ROOT / "benchmarks" / "work" / "stability"
DEFAULT_REUSE = ROOT / "benchmarks" / "results" / "lottery_tickets.json"
REWIND_FRACTIONS = (0.0, 0.02, 0.05, 0.10)  # of a training: k = 0, 12, 30, 60 at 600 steps
SMOKE_SIDE = 48  # --smoke scores test photographs cut to this long side: scoring is most of a smoke run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_training_args(p)
    p.add_argument("--rate", type=float, default=0.2, help="IMP's rate per round")
    p.add_argument(
        "--networks", default=None, help="IMP rounds whose network is analysed (default 0,6,10: 1, 0.262, 0.107)"
    )
    p.add_argument(
        "--rewind-steps", default=None, help="rewind steps k (default 0, 2%%, 5%%, 10%% of --steps: 0,12,30,60)"
    )
    p.add_argument(
        "--path-images",
        default=None,
        help="images of each test set the path is scored on (default 2; smoke 1), or 'all'",
    )
    p.add_argument("--points", type=int, default=MIN_POINTS, help=f"points on each path (at least {MIN_POINTS})")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="stable: barrier <= this (dB)")
    p.add_argument("--test-degradations", type=int, default=3, help="seeded degradations per test photograph")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per worker (default 1, as lottery_tickets)")
    p.add_argument(
        "--workers", type=int, default=None, help="units run at once, each in its own process (default 2; smoke 1)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON path; .md and .png go beside it")
    p.add_argument("--work", type=Path, default=None, help="run directories (default: benchmarks/work/stability)")
    p.add_argument(
        "--reuse", default=str(DEFAULT_REUSE), help="lottery_tickets results to take random reinit from; 'none'"
    )
    p.add_argument("--quick", action="store_true", help="1 seed, the ticket at 0.64 (round 2), k = 0 and 10%%")
    p.add_argument("--smoke", action="store_true", help="seconds: 4 steps, 2 photos a set, 2 rounds, k = 0, 2")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its time estimate, then stop")
    p.add_argument("--report-only", action="store_true", help="rebuild the tables and figure from --out")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.networks = 1, args.networks or "2"
        args.rewind_steps = args.rewind_steps or f"0,{round(0.1 * args.steps)}"
    if args.smoke:
        args.seeds, args.steps, args.patch, args.batch, args.test_degradations = 1, 4, 32, 4, 1
        args.networks, args.rewind_steps = args.networks or "0,2", args.rewind_steps or "0,2"
        args.workers, args.path_images = args.workers or 1, args.path_images or "1"
    args.path_images, args.workers = args.path_images or "2", args.workers or 2
    args.networks = _ints(p, "--networks", args.networks or "0,6,10")
    args.rewind_steps = _ints(p, "--rewind-steps", args.rewind_steps or _default_ks(args.steps))
    if args.rewind_steps[-1] >= args.steps:
        p.error(f"--rewind-steps must be below --steps ({args.steps}), got {args.rewind_steps}")
    if args.path_images != "all":
        try:
            args.path_images = int(args.path_images)
        except ValueError:
            p.error(f"--path-images must be a positive integer or 'all', got {args.path_images!r}")
        if args.path_images < 1:
            p.error("--path-images must be at least 1")
    else:
        args.path_images = None
    if args.points < MIN_POINTS:
        p.error(f"--points must be at least {MIN_POINTS}")
    if args.workers < 1 or args.threads < 1:
        p.error("--workers and --threads must be at least 1")
    if args.work is None:
        args.work = DEFAULT_WORK if args.out.resolve() == DEFAULT_OUT else args.out.with_name(args.out.stem + "_work")
    args.late_round = args.networks[-1]  # the sparsest network analysed gets the late-rewind retraining
    return args


def _ints(p: argparse.ArgumentParser, flag: str, text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        p.error(f"{flag} must be comma-separated integers, got {text!r}")
    if not values or values[0] < 0:
        p.error(f"{flag} must be integers >= 0, got {text!r}")
    return values


def _default_ks(steps: int) -> str:
    return ",".join(str(round(f * steps)) for f in REWIND_FRACTIONS)


# -- configuration -------------------------------------------------------------------------
def run_config(args: argparse.Namespace, seed: int) -> RunConfig:
    """The `lotteryir prune` configuration of one seed's IMP run (lottery_tickets' and cost_quality's)."""
    opts: dict[str, Any] = {"degradations": args.test_degradations}
    if args.smoke:
        opts.update(max_images=2, test_max_side=SMOKE_SIDE)
    return sample_config(
        args,
        seed,
        data_paths=opts,
        rounds=args.late_round,
        rate=args.rate,
    )


def config_record(args: argparse.Namespace, n_test: int) -> dict[str, Any]:
    """What defines the results (a resumed benchmark must match it; --seeds may grow)."""
    return {
        **training_record(args, n_test),
        "imp_rounds": args.late_round,
        "networks": args.networks,
        "densities": [(1 - args.rate) ** r for r in args.networks],
        "rewind_steps": args.rewind_steps,
        "points": args.points,
        "threshold": args.threshold,
        "path_images_per_set": args.path_images,
        "late_round": args.late_round,
        "smoke": args.smoke,
    }


# -- the units (each runs in a worker process, or in this one with --workers 1) ------------
def imp_unit(directory: str, config: RunConfig, networks: list[int]) -> dict[str, Any]:
    """One seed's IMP run, trained (or resumed) to its last round; the analysed rounds' scores."""
    t0 = time.perf_counter()
    history = PruningRun(directory, config).run()
    cells = {}
    for h in history:
        if h["round"] in networks:
            ev = h["eval"]
            cells[str(h["round"])] = {
                "round": h["round"],
                "density": h["density"],
                "psnr": {k: v["psnr"] for k, v in ev.items()},
                "input_psnr": {k: v["input_psnr"] for k, v in ev.items()},
                "mean_psnr": h["mean_psnr"],
            }
    return {"cells": cells, "seconds": time.perf_counter() - t0, "source": directory}


def stability_unit(
    directory: str, r: int, k: int, points: int, threshold: float, path_images: int | None
) -> dict[str, Any]:
    """The path from rewind step k of round r's network: ``run_stability`` itself, nothing stored in the run."""
    t0 = time.perf_counter()
    report = run_stability(
        directory, round=r, rewind_steps=[k], points=points, threshold=threshold, save=False, test_images=path_images
    )
    entry = report.to_dict()["rewind_steps"][0]
    return {
        "round": r,
        "density": report.density,
        "input_psnr": report.input_psnr,
        "mean_input_psnr": report.mean_input_psnr,
        **entry,
        "seconds": time.perf_counter() - t0,
    }


def retrain_ticket(directory: str, r: int, k: int) -> dict[str, Any]:
    """Round r's ticket of the run in ``directory`` retrained from step k of its round 0, as the run trains round r.

    The mask is the run's round-r mask; every tensor starts at the run's weights after k steps of
    its replayed round 0 (``states_at_steps``: k = 0 is the init), pruned entries zero; the round is
    the run's own trainer with round r's context (round, density, the run's seed: round r's data
    order), so at k = 0 this is the run's round r again, score for score (on CPU).
    """
    t0 = time.perf_counter()
    config = read_config(directory)
    built = build_run(config)
    state = states_at_steps(built, [k])[k]
    model = start_from(built.model, state)  # a copy holding the step-k weights (names unpruned)
    mask = Mask.load(RunLayout(directory).mask(r))
    attach_masks(model, mask)
    ctx = RoundContext.for_round(r, mask.density, seed=config.seed)
    return {"k": k, **train_and_score(built, model, ctx, t0)}


def train_and_score(built: Any, model: torch.nn.Module, ctx: RoundContext, t0: float) -> dict[str, Any]:
    """Train ``model`` with the run's own trainer in ``ctx``, score it on the full test sets."""
    train = built.trainer(model, ctx)
    scores = built.evaluate(model)
    ev = scores["eval"]
    return {
        "round": ctx.round,
        "density": ctx.density,
        "psnr": {label: s["psnr"] for label, s in ev.items()},
        "input_psnr": {label: s["input_psnr"] for label, s in ev.items()},
        "mean_psnr": scores["mean_psnr"],
        "train_loss": train.get("loss"),
        "seconds": time.perf_counter() - t0,
    }


def reinit_unit(directory: str, r: int) -> dict[str, Any]:
    """Random reinit at round r's density, trained here as the run's ``random_reinit`` control trains.

    Round r's mask on a fresh initialization drawn under the control's seed (``seed + 7919 r``, the
    pruner's), trained by the run's own trainer with round r's control context, scored on the full
    test sets: the baseline the ticket must beat, from the same code and data as the ticket.
    """
    t0 = time.perf_counter()
    config = read_config(directory)
    built = build_run(config)
    mask = Mask.load(RunLayout(directory).mask(r))
    model = built.model
    reinitialize(model, config.seed + 7919 * r, factory=built.fresh_model)
    attach_masks(model, mask)
    ctx = RoundContext.for_round(r, mask.density, "random_reinit", seed=config.seed)
    got = train_and_score(built, model, ctx, t0)
    return {**got, "trained": True, "source": f"trained here (random_reinit of {directory}, round {r})"}


def run_unit(unit: tuple[Any, ...]) -> dict[str, Any]:
    """One unit by its description (picklable: the workers get tuples)."""
    kind, *rest = unit
    if kind == "imp":
        return imp_unit(*rest)
    if kind == "stab":
        return stability_unit(*rest)
    if kind == "reinit":
        return reinit_unit(*rest)
    return retrain_ticket(*rest)


# -- planning ------------------------------------------------------------------------------
def seed_dir(args: argparse.Namespace, seed: int) -> Path:
    return args.work / f"seed{seed}" / "imp"


def late_step(args: argparse.Namespace, seed_res: dict[str, Any]) -> tuple[int, bool] | None:
    """(k, stable) for the late ticket: the smallest stable k of the late network, else the largest measured."""
    paths = seed_res.get("stability", {}).get(str(args.late_round), {})
    if any(str(k) not in paths for k in args.rewind_steps):
        return None
    barriers = {k: _nan(paths[str(k)]["mean_barrier"]) for k in args.rewind_steps}
    stable = smallest_stable(barriers, args.threshold)
    return (stable, True) if stable is not None else (max(args.rewind_steps), False)


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def pending(args: argparse.Namespace, results: dict[str, Any], seeds: list[int]) -> list[tuple[str, int, int, int]]:
    """Units not finished yet, seed by seed: (kind, seed, round, k); the late network's paths first."""
    todo: list[tuple[str, int, int, int]] = []
    order = [args.late_round, *[r for r in reversed(args.networks) if r != args.late_round]]
    for s in seeds:
        res = results.get(str(s), {})
        if "imp" not in res:
            todo.append(("imp", s, args.late_round, 0))
        for r in order:
            for k in args.rewind_steps:
                if str(k) not in res.get("stability", {}).get(str(r), {}):
                    todo.append(("stab", s, r, k))
            if r == args.late_round and "late" not in res:
                todo.append(("late", s, r, -1))
            if r == args.late_round and "reinit" not in res:
                todo.append(("reinit", s, r, -1))
    return todo


def estimate(args: argparse.Namespace, todo: list[tuple[str, int, int, int]], t: dict[str, float]) -> dict[str, Any]:
    """Seconds of work per unit (from a measured step and evaluation), in all and on --workers workers."""
    per_unit = []
    for kind, s, _r, k in todo:
        if kind == "imp":
            done = len(read_history(seed_dir(args, s))) if RunLayout(seed_dir(args, s)).history.is_file() else 0
            secs = (args.late_round + 1 - done) * (args.steps * t["step"] + t["eval"]) + t["build"]
        elif kind == "stab":
            secs = (2 * (args.steps - k) + k) * t["step"] + args.points * t["path_eval"] + t["build"]
        elif kind == "reinit":  # counted as trained here (a reuse that passes its checks trains nothing)
            secs = args.steps * t["step"] + t["eval"] + t["build"]
        else:  # the worst case: no k stable, retrained from the largest (k = 0 stable trains nothing)
            secs = (args.steps + max(args.rewind_steps)) * t["step"] + t["eval"] + t["build"]
        per_unit.append(secs)
    work = sum(per_unit)
    # A seed's units wait for its IMP run: the longest chain bounds the wall time from below.
    chains = [
        sum(x for u, x in zip(todo, per_unit) if u[1] == s and u[0] == "imp")
        + max([x for u, x in zip(todo, per_unit) if u[1] == s and u[0] != "imp"] or [0.0])
        for s in {u[1] for u in todo}
    ]
    wall = max(work / args.workers, max(chains, default=0.0))
    return {"units": len(todo), "work_seconds": work, "wall_seconds": wall, "one_worker_seconds": work}


# -- aggregation ---------------------------------------------------------------------------
def aggregate(report: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Barriers per network and k over seeds, smallest stable k, mean paths, and the late-rewind comparison."""
    seeds = [str(s) for s in report["config"]["seeds"]]
    res = report["results"]
    summary: dict[str, Any] = {"networks": [], "late": None}
    for r in args.networks:
        row: dict[str, Any] = {"round": r, "density": (1 - args.rate) ** r, "k": {}, "stable_per_seed": {}}
        for k in args.rewind_steps:
            cells = [res[s]["stability"][str(r)][str(k)] for s in seeds if str(k) in _stab(res, s, r)]
            if not cells:
                continue
            labels = list(cells[0]["barrier"])
            curves = [[_nan(v) for v in c["mean_psnr"]] for c in cells]
            row["k"][str(k)] = {
                "n": len(cells),
                "mean_barrier": spread([_nan(c["mean_barrier"]) for c in cells]),
                "barrier": {lab: spread([_nan(c["barrier"][lab]) for c in cells]) for lab in labels},
                "endpoints": spread([statistics.fmean((cu[0], cu[-1])) for cu in curves]),
                "lowest": spread([min(cu) for cu in curves]),
                # The barrier is at least half the endpoints' gap (the lower copy is below their mean).
                "half_gap": spread([abs(cu[0] - cu[-1]) / 2 for cu in curves]),
                "alphas": cells[0]["alphas"],
                "mean_path": [statistics.fmean(cu[i] for cu in curves) for i in range(len(curves[0]))],
                "input_psnr": statistics.fmean(_nan(c["mean_input_psnr"]) for c in cells),
                "input_psnr_per_set": cells[0]["input_psnr"],
                "steps": cells[0]["steps"],
            }
        for s in seeds:
            paths = _stab(res, s, r)
            if all(str(k) in paths for k in args.rewind_steps):
                barriers = {k: _nan(paths[str(k)]["mean_barrier"]) for k in args.rewind_steps}
                row["stable_per_seed"][s] = smallest_stable(barriers, args.threshold)
        complete = [k for k in args.rewind_steps if row["k"].get(str(k), {}).get("n") == len(seeds)]
        row["stable_on_mean"] = (
            smallest_stable({k: row["k"][str(k)]["mean_barrier"]["mean"] for k in complete}, args.threshold)
            if len(complete) == len(args.rewind_steps)
            else None
        )
        summary["networks"].append(row)
    late = {s: res[s]["late"] for s in seeds if "late" in res.get(s, {})}
    if late:
        init = {s: res[s]["imp"]["cells"][str(args.late_round)] for s in late}
        # Each seed's own unit (trained here, or the reused record once its checks passed).
        reinit = {s: res[s]["reinit"] for s in seeds if "reinit" in res.get(s, {})}
        both = sorted(late)
        labels = list(init[both[0]]["psnr"])

        def metrics(c: dict[str, Any]) -> dict[str, float]:
            return {"mean": c["mean_psnr"], **c["psnr"]}

        lm, im = [metrics(late[s]) for s in both], [metrics(init[s]) for s in both]
        out: dict[str, Any] = {
            "n": len(both),
            "k_per_seed": {s: late[s]["k"] for s in both},
            "stable_per_seed": {s: late[s]["stable"] for s in both},
            "input": {"mean": statistics.fmean(init[both[0]]["input_psnr"].values()), **init[both[0]]["input_psnr"]},
            "late": {m: spread([x[m] for x in lm]) for m in ["mean", *labels]},
            "init": {m: spread([x[m] for x in im]) for m in ["mean", *labels]},
            "late_minus_init": {m: paired([x[m] for x in lm], [y[m] for y in im]) for m in ["mean", *labels]},
        }
        withre = [s for s in both if s in reinit]
        if withre:
            rm = [metrics(reinit[s]) for s in withre]
            li = [metrics(late[s]) for s in withre]
            ii = [metrics(init[s]) for s in withre]
            out["reinit"] = {m: spread([x[m] for x in rm]) for m in ["mean", *labels]}
            out["init_minus_reinit"] = {m: paired([x[m] for x in ii], [y[m] for y in rm]) for m in ["mean", *labels]}
            out["late_minus_reinit"] = {m: paired([x[m] for x in li], [y[m] for y in rm]) for m in ["mean", *labels]}
        out["verdict"] = verdict(out)
        summary["late"] = out
    return summary


def _stab(res: dict[str, Any], s: str, r: int) -> dict[str, Any]:
    return res.get(s, {}).get("stability", {}).get(str(r), {})


def _side(d: dict[str, float]) -> str:
    """above / below / within: where a paired difference's 95% interval lies against 0."""
    if not (d["n"] >= 2 and math.isfinite(d["low"])):
        return "unresolved (one seed)"
    return "above 0" if d["low"] > 0 else "below 0" if d["high"] < 0 else "within the noise (interval holds 0)"


def verdict(late: dict[str, Any]) -> str:
    d = late["late_minus_init"]["mean"]
    side = _side(d)
    ks = sorted(set(late["k_per_seed"].values()))
    text = (
        f"Late rewinding (k = {', '.join(map(str, ks))}) minus rewinding to init, mean PSNR: {_ci(d)} dB, {side}: "
        + (
            "late rewinding improves the ticket"
            if side == "above 0"
            else "late rewinding worsens the ticket"
            if side == "below 0"
            else "no difference the seeds resolve"
        )
        + "."
    )
    if any(k == 0 for k in late["k_per_seed"].values()):
        text += " (Where k = 0 is stable the late ticket is the run's round itself: difference 0 for that seed.)"
    if "init_minus_reinit" in late:
        gi, gl = late["init_minus_reinit"]["mean"], late["late_minus_reinit"]["mean"]
        # the question late rewinding answers at scale (Frankle et al. 2020): does it give the ticket a lead
        # over random reinit that rewinding to init lacks? late - init is that change of the lead.
        change = (
            "widens the ticket's lead over random reinit"
            if side == "above 0"
            else "shrinks the ticket's lead over random reinit"
            if side == "below 0"
            else "does not change the ticket's lead over random reinit beyond the noise"
        )
        already = (
            "the ticket rewound to init already beats random reinit"
            if _side(gi) == "above 0"
            else "the ticket rewound to init does not beat random reinit"
        )
        text += (
            f" Ticket minus random reinit: rewound to init {_ci(gi)} dB ({_side(gi)}), late-rewound {_ci(gl)} dB "
            f"({_side(gl)}). Late rewinding {change}; {already}."
        )
    else:
        text += " Random reinit: not finished for these seeds yet."
    return text


# -- presentation --------------------------------------------------------------------------
def _pm(s: dict[str, float], n: int, digits: int = 2) -> str:
    if not math.isfinite(s["mean"]):
        return "nan"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if n > 1 else "")


def _ci(d: dict[str, float]) -> str:
    if d["n"] < 2:
        return f"{d['mean']:+.2f} (1 seed)"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"


def _col(label: str) -> str:
    return SHORT.get(label.split("/")[0], label)


def _net(row: dict[str, Any]) -> str:
    return f"{row['density']:.3f}" + (" (dense)" if row["round"] == 0 else f" (round {row['round']})")


def markdown(summary: dict[str, Any], report: dict[str, Any], args: argparse.Namespace) -> str:
    c = report["config"]
    ks = args.rewind_steps
    path_imgs = "all" if c["path_images_per_set"] is None else c["path_images_per_set"]
    out = [
        f"## Is the ticket stable? mirl/{args.size}, sample recipe, {args.steps} steps/training, seeds {c['seeds']}",
        "",
        f"Linear mode connectivity: two copies from rewind step k (the run's round 0 replayed to k), trained "
        f"{args.steps} - k steps with two other data orders, scored at {args.points} points of the line between "
        f"them on {path_imgs} of the {c['test_images_per_set']} images of each test set. Barrier: largest drop of "
        f"PSNR below the endpoints' mean (dB); stable: barrier <= {args.threshold:g} dB. Mean ± std over seeds; "
        "`-` not finished yet. The barrier is never below half the gap between the two endpoints (the lower "
        "copy is itself below their mean), so the per-network tables give that half gap beside it: a barrier "
        "equal to it is two copies of different quality, not a dip between them.",
        "",
        "### Barrier of the mean PSNR over the six sets (dB)",
        "",
        "| network (density) | " + " | ".join(f"k={k}" for k in ks) + " | smallest stable k per seed | on the mean |",
        "|---" * (len(ks) + 3) + "|",
    ]
    for row in summary["networks"]:
        cells = [
            _pm(row["k"][str(k)]["mean_barrier"], row["k"][str(k)]["n"]) if str(k) in row["k"] else "-" for k in ks
        ]
        per_seed = ", ".join(f"{'none' if v is None else v}" for v in row["stable_per_seed"].values()) or "-"
        mean = row["stable_on_mean"]
        out.append(f"| {_net(row)} | " + " | ".join(cells) + f" | {per_seed} | {'none' if mean is None else mean} |")
    for row in summary["networks"]:
        if not row["k"]:
            continue
        first = next(iter(row["k"].values()))
        labels = list(first["barrier"])
        out += [
            "",
            f"### {_net(row)}: barrier per test set (dB), with the path's endpoints and lowest point",
            "",
            "| k | copies' steps | "
            + " | ".join(_col(lab) for lab in labels)
            + " | mean | half the endpoints' gap | endpoints' PSNR | lowest |",
            "|---" * (len(labels) + 6) + "|",
            "| degraded input (path images) | | "
            + " | ".join(f"{_nan(first['input_psnr_per_set'][lab]):.2f}" for lab in labels)
            + f" | | | {first['input_psnr']:.2f} | |",
        ]
        for k in ks:
            x = row["k"].get(str(k))
            if x is None:
                out.append(f"| {k} | - |" + " - |" * (len(labels) + 4))
                continue
            out.append(
                f"| {k} | {x['steps']} | "
                + " | ".join(_pm(x["barrier"][lab], x["n"]) for lab in labels)
                + f" | {_pm(x['mean_barrier'], x['n'])} | {_pm(x['half_gap'], x['n'])} | {_pm(x['endpoints'], x['n'])} "
                f"| {_pm(x['lowest'], x['n'])} |"
            )
    late = summary.get("late")
    out += [
        "",
        f"### The ticket at {(1 - args.rate) ** args.late_round:.3f}: late rewinding against rewinding to init",
        "",
    ]
    if not late:
        out.append("Not finished yet.")
        return "\n".join(out) + "\n"
    labels = [k for k in late["init"] if k != "mean"]
    per_seed = ", ".join(
        f"seed {s}: k={k}" + ("" if late["stable_per_seed"][s] else " (none stable: largest k)")
        for s, k in late["k_per_seed"].items()
    )
    out += [
        f"Retrained from the smallest stable k of this ticket ({per_seed}) as the run trains its rounds "
        f"(full {args.steps} steps, the round's data order), scored on the full test sets. "
        f"Random reinit: {reinit_source(report)}.",
        "",
        "| | mean | " + " | ".join(_col(lab) for lab in labels) + " |",
        "|---" * (len(labels) + 2) + "|",
        "| degraded input | " + " | ".join(f"{late['input'][m]:.2f}" for m in ["mean", *labels]) + " |",
    ]
    rows = [("rewound to init (the run's round)", "init"), ("late-rewound", "late"), ("random reinit", "reinit")]
    for name, key in rows:
        if key in late:
            out.append(f"| {name} | " + " | ".join(_pm(late[key][m], late["n"]) for m in ["mean", *labels]) + " |")
    out += ["", "Paired over seeds: mean [95% t-interval] (dB).", ""]
    out += ["| | mean | " + " | ".join(_col(lab) for lab in labels) + " |", "|---" * (len(labels) + 2) + "|"]
    for name, key in (
        ("late − init", "late_minus_init"),
        ("init − reinit", "init_minus_reinit"),
        ("late − reinit", "late_minus_reinit"),
    ):
        if key in late:
            out.append(f"| {name} | " + " | ".join(_ci(late[key][m]) for m in ["mean", *labels]) + " |")
    out += ["", f"**Verdict.** {late['verdict']}"]
    return "\n".join(out) + "\n"


def figure(summary: dict[str, Any], args: argparse.Namespace, path: Path, seeds: list[int]) -> None:
    """Mean PSNR along the path (averaged over seeds), one line per k, one panel per network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["networks"]
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(5.2 * max(1, len(rows)), 4.4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, row in zip(axes[0], rows):
        for i, k in enumerate(args.rewind_steps):
            x = row["k"].get(str(k))
            if x is None:
                continue
            label = f"k={k}: barrier {x['mean_barrier']['mean']:.2f} dB" + (
                f" ({x['n']} seed{'s' if x['n'] > 1 else ''})" if x["n"] < len(seeds) else ""
            )
            color = cmap(i / max(len(args.rewind_steps) - 1, 1))
            ax.plot(x["alphas"], x["mean_path"], marker="o", ms=3, lw=2, color=color, label=label)
        inputs = [x["input_psnr"] for x in row["k"].values()]
        if inputs and math.isfinite(inputs[0]):
            ax.axhline(inputs[0], color="tab:red", ls="--", lw=1.5, label="degraded input (path images)")
        stable = row["stable_on_mean"]
        ax.set_title(
            f"density {_net(row)}: smallest stable k "
            + ("(mean) " + ("none" if stable is None else str(stable)) if row["k"] else "-"),
            fontsize=9,
        )
        ax.set_xlabel("alpha: (1 - alpha) copy 1 + alpha copy 2")
        ax.set_ylabel("PSNR (dB), mean over test sets and seeds")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(
        f"mirl/{args.size}, sample recipe, {args.steps} steps/training, seeds {seeds}; stable: barrier <= "
        f"{args.threshold:g} dB",
        fontsize=10,
    )
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def write_outputs(report: dict[str, Any], args: argparse.Namespace) -> str:
    """Summary, JSON, table and figure from whatever is finished (each written atomically)."""
    check_reinit(report)
    report["summary"] = aggregate(report, args)
    atomic_write_text(args.out, json.dumps(report, indent=2))
    text = markdown(report["summary"], report, args)
    atomic_write_text(args.out.with_suffix(".md"), text)
    figure(report["summary"], args, args.out.with_suffix(".png"), report["config"]["seeds"])
    return text


# -- main ----------------------------------------------------------------------------------
def reinit_cells(args: argparse.Namespace, source: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Random reinit at the late network's density, per seed, from lottery_tickets' records (with that
    run's dense round, which the IMP run trained here must reproduce for the two to be one training)."""
    out = {}
    for run in source.get("runs", []):
        if run["seed"] in seeds:
            x = run["rounds"][str(args.late_round)]["variants"]["random_reinit"]
            dense = run["rounds"].get("0", {}).get("variants", {}).get("dense", {}).get("psnr")
            out[str(run["seed"])] = {
                "psnr": x["psnr"],
                "mean_psnr": x["mean_psnr"],
                "input_psnr": x["input_psnr"],
                "dense_psnr": dense,
            }
    return out


def reinit_source(report: dict[str, Any]) -> str:
    """Where each seed's random reinit comes from, for the table's caption."""
    cells = {s: r["reinit"] for s, r in report["results"].items() if "reinit" in r}
    here = sorted((s for s, c in cells.items() if c.get("trained")), key=int)
    reused = sorted((s for s, c in cells.items() if not c.get("trained")), key=int)
    parts = [f"trained here as the run's random_reinit control (seeds {', '.join(here)})"] if here else []
    if reused:
        parts.append(f"{report.get('reuse', {}).get('summary', 'reused')} (seeds {', '.join(reused)})")
    lt = report.get("reuse", {})
    if here and not lt.get("reused") and "summary" in lt:
        parts.append(f"lottery_tickets.json's: {lt['summary']}")
    return "; ".join(parts) or "not finished yet"


def check_reinit(report: dict[str, Any]) -> None:
    """Drop the reused random reinit when lottery_tickets' dense round differs from this benchmark's.

    Equal settings are not enough (cost_quality found the code changed since lottery_tickets ran): the
    IMP run's round 0 trained here must score what lottery_tickets' dense scored, set by set.
    """
    reinit = report.get("reinit") or {}
    diffs = []
    for s, cell in reinit.items():
        mine = report["results"].get(s, {}).get("imp", {}).get("cells", {}).get("0")
        theirs = cell.get("dense_psnr")
        if mine is None:
            continue
        if not theirs or set(theirs) != set(mine["psnr"]):
            diffs.append(math.inf)
            continue
        diffs.append(max(abs(mine["psnr"][k] - theirs[k]) for k in theirs))
    worst = max(diffs, default=0.0)
    if worst > DENSE_TOLERANCE_DB:
        report["reinit"] = {}
        source = Path(report.get("reuse", {}).get("source", "lottery_tickets.json")).name
        report["reuse"] = {
            **report.get("reuse", {}),
            "reused": False,
            "dense_check": worst,
            "summary": f"not available ({source}'s dense round differs from the one trained here by up to "
            f"{worst:.2f} dB on a set: another training)",
        }


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    if args.report_only:
        if not args.out.is_file():
            print(f"error: {args.out} does not exist; run the benchmark first", file=sys.stderr)
            return 2
        print(write_outputs(json.loads(args.out.read_text()), args))
        return 0

    t_build = time.perf_counter()
    probe = build_run(run_config(args, args.seed0).resolved())
    build_s = time.perf_counter() - t_build
    n_test = len(next(iter(probe.test_sets.values())))  # type: ignore[arg-type]
    inputs = input_psnr(probe.test_sets, args.device)
    config = config_record(args, n_test)
    if args.out.is_file():
        report = json.loads(args.out.read_text())
        old = {k: v for k, v in report.get("config", {}).items() if k != "seeds"}
        if old != config:
            diff = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in config.items() if old.get(k) != v]
            print(
                f"error: {args.out} holds results of another configuration ({'; '.join(diff[:3])}); "
                "use another --out (and --work)",
                file=sys.stderr,
            )
            return 2
    else:
        report = {"benchmark": "stability", "results": {}}
    report["config"] = {**config, "seeds": sorted({*report.get("config", {}).get("seeds", []), *seeds})}
    report["environment"] = environment()
    results: dict[str, Any] = report["results"]

    # Random reinit at the late network's density from lottery_tickets when it trained exactly this.
    if args.reuse != "none" and Path(args.reuse).is_file():
        source = json.loads(Path(args.reuse).read_text())
        checks = reuse_checks(argparse.Namespace(**{**vars(args), "rounds": [args.late_round]}), source, inputs, n_test)
        ok = all(c["equal"] for c in checks)
        report["reuse"] = {
            "source": _shown(Path(args.reuse)),  # relative to the checkout: a results file names no home directory
            "reused": ok,
            "checks": checks,
            "summary": f"from {Path(args.reuse).name} (every setting and the degraded inputs equal)"
            if ok
            else f"not available ({Path(args.reuse).name}'s settings differ: "
            + ", ".join(c["setting"] for c in checks if not c["equal"])
            + ")",
        }
        report["reinit"] = reinit_cells(args, source, seeds) if ok else {}
    else:
        report["reuse"] = {"reused": False, "summary": f"not available (--reuse {args.reuse}: no such file)"}
        report["reinit"] = {}

    print(f"random reinit at round {args.late_round}: {report['reuse']['summary']}")
    todo = pending(args, results, seeds)
    step_s, eval_s = probe.measure(steps=4 if not args.smoke else 2)
    n_images = n_test * len(probe.test_sets)
    path_n = n_test if args.path_images is None else min(args.path_images, n_test)
    timing = {"step": step_s, "eval": eval_s, "path_eval": eval_s * path_n / n_test, "build": build_s}
    plan = estimate(args, todo, timing)
    load = os.getloadavg()
    params = sum(p.numel() for p in probe.model.parameters())
    print(
        f"stability: mirl/{args.size} ({params:,} params), sample recipe, {len(inputs)} test sets x {n_test} images "
        f"({n_images} in all; paths on {path_n} a set); {args.steps} steps/training; IMP to round {args.late_round}; "
        f"networks at rounds {args.networks} (densities {[round(d, 4) for d in config['densities']]}); "
        f"k = {args.rewind_steps}; {args.points} points; seeds {seeds}; {args.threads} thread(s) x "
        f"{args.workers} worker(s)"
    )
    kinds = {kind: sum(u[0] == kind for u in todo) for kind in ("imp", "stab", "late", "reinit")}
    print(
        f"  {plan['units']} unit(s) to run ({kinds['imp']} IMP runs, {kinds['stab']} paths, {kinds['late']} late "
        f"tickets, {kinds['reinit']} random reinits); measured {step_s * 1000:.0f} ms/step, "
        f"{eval_s:.1f} s/evaluation of every test image, "
        f"{timing['path_eval']:.1f} s/path point, {build_s:.1f} s/build (load average {load[0]:.2f}) -> "
        f"{plan['work_seconds'] / 60:.1f} min of work: estimated {plan['one_worker_seconds'] / 60:.1f} min on 1 "
        f"worker, {plan['wall_seconds'] / 60:.1f} min on {args.workers} (each worker at the step measured now; a "
        "1-thread step was 148 ms alone in lottery_tickets.json, 187 ms beside another 1-thread job; late tickets "
        "counted as trained from the largest k)",
        flush=True,
    )
    if args.dry_run:
        return 0
    report["timing"] = {
        "step_seconds": step_s,
        "eval_seconds": eval_s,
        "path_eval_seconds": timing["path_eval"],
        "build_seconds": build_s,
        "estimate_seconds": plan["wall_seconds"],
        "estimate_one_worker_seconds": plan["one_worker_seconds"],
        "load_average": load[0],
        "workers": args.workers,
    }
    del probe
    write_outputs(report, args)

    started = time.perf_counter()
    done_count = 0

    def ready(u: tuple[str, int, int, int]) -> tuple[Any, ...] | None:
        kind, s, r, k = u
        res = results.get(str(s), {})
        if kind == "imp":
            return ("imp", str(seed_dir(args, s)), run_config(args, s), args.networks)
        if "imp" not in res:
            return None
        if kind == "stab":
            return ("stab", str(seed_dir(args, s)), r, k, args.points, args.threshold, args.path_images)
        if kind == "reinit":
            check_reinit(report)  # the dense round trained here decides whether lottery_tickets' is the same
            if str(s) in report.get("reinit", {}):
                return ("copy", {**report["reinit"][str(s)], "trained": False, "seconds": 0.0})
            return ("reinit", str(seed_dir(args, s)), r)
        step = late_step(args, res)
        if step is None:
            return None
        if step[0] == 0:  # k = 0 is stable: the late ticket is the run's own round, nothing to train
            cell = res["imp"]["cells"][str(r)]
            return ("copy", {**cell, "k": 0, "stable": True, "seconds": 0.0, "trained": False})
        return ("late", str(seed_dir(args, s)), r, step[0])

    def record(u: tuple[str, int, int, int], call: tuple[Any, ...], got: dict[str, Any]) -> None:
        nonlocal done_count
        kind, s, r, k = u
        res = results.setdefault(str(s), {})
        if kind == "imp":
            res["imp"] = got
            what = ", ".join(f"round {q}: {c['mean_psnr']:.2f} dB" for q, c in got["cells"].items())
        elif kind == "stab":
            res.setdefault("stability", {}).setdefault(str(r), {})[str(k)] = got
            what = f"round {r} k={k}: barrier {_nan(got['mean_barrier']):.3f} dB"
        elif kind == "reinit":
            res["reinit"] = got
            what = f"random reinit ({'trained here' if got.get('trained') else 'reused'}): {got['mean_psnr']:.2f} dB"
        else:
            step = late_step(args, res)
            assert step is not None
            res["late"] = {**got, "stable": step[1], "trained": got.get("trained", True)}
            what = f"late ticket (k={got['k']}): {got['mean_psnr']:.2f} dB"
        write_outputs(report, args)
        done_count += 1
        print(
            f"[{done_count}/{len(todo)}] seed {s} {what}; {got.get('seconds', 0):.0f} s, "
            f"{(time.perf_counter() - started) / 60:.1f} min in all",
            flush=True,
        )

    queue = list(todo)
    failed: list[str] = []

    def take() -> tuple[tuple[str, int, int, int], tuple[Any, ...]] | None:
        """The first pending unit whose inputs are finished (a seed's IMP run, for the late ticket its paths)."""
        for u in queue:
            call = ready(u)
            if call is not None:
                queue.remove(u)
                return u, call
        return None

    def failure(u: tuple[str, int, int, int], e: BaseException) -> None:
        # The other units go on (their results are kept); what needed this one stays pending for a rerun.
        failed.append(f"{u[0]} seed {u[1]} round {u[2]}" + (f" k={u[3]}" if u[0] == "stab" else ""))
        print(f"error: {failed[-1]} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)

    if args.workers == 1:
        while (got := take()) is not None:
            u, call = got
            try:
                result = call[1] if call[0] == "copy" else run_unit(call)
            except Exception as e:  # noqa: BLE001  (reported, and the rerun retries it)
                failure(u, e)
                continue
            record(u, call, result)
    else:
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
        with cf.ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
            running: dict[cf.Future[dict[str, Any]], tuple[tuple[str, int, int, int], tuple[Any, ...]]] = {}
            while True:
                while len(running) < args.workers and (got := take()) is not None:
                    u, call = got
                    if call[0] == "copy":
                        record(u, call, call[1])
                    else:
                        running[pool.submit(run_unit, call)] = (u, call)
                if not running:
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for f in finished:
                    u, call = running.pop(f)
                    try:
                        result = f.result()
                    except Exception as e:  # noqa: BLE001
                        failure(u, e)
                        continue
                    record(u, call, result)
    report["timing"]["total_seconds"] = time.perf_counter() - started
    text = write_outputs(report, args)
    print("\n" + text)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')}, {args.out.with_suffix('.png')}; runs in {args.work}")
    if failed or queue:
        print(
            f"error: {len(failed)} unit(s) failed, {len(queue)} left waiting on them; rerun to retry", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
