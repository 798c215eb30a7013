"""Whose ticket is it? Tickets found on one task alone against the all-in-one ticket (issue 20).

Per seed, a ticket at density ~0.107 on each task's data alone (``lotteryir prune --tasks``: denoise,
derain, dehaze, web) and one on all tasks (default: IMP at rate 1 - sqrt(0.107), 2 rounds). Reported: the
mask IoU of every pair beside random masks', each ticket against its own init's magnitude mask; each task
ticket's PSNR on its own sets beside the all-in-one ticket's and the input's, paired (95% t-interval); the
verdict: the all-in-one ticket serves every task within 0.1 dB of its own ticket. docs/benchmarks.md: more.

    python benchmarks/task_tickets.py --seeds 3      # the full run (see --dry-run for the estimate)
    python benchmarks/task_tickets.py --quick        # 1 seed, oneshot, denoise/derain/all (under 20 min)
    python benchmarks/task_tickets.py --smoke --out /tmp/tt.json   # seconds: 3 steps, 2 photos a set
    python benchmarks/task_tickets.py --report-only  # table and figure from the results file
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from harness import ROOT, Benchmark, Unit, ci, main, paired, sample, seeds, spread
from reports import task_tickets as view
from reports.task_tickets import route

from lotteryir.analysis import rewind_magnitude_overlap, run_overlap
from lotteryir.data.tasks import ALL_TASKS, DENOISE_TASKS
from lotteryir.runs import RunConfig, build_run, read_history

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


def density(a: argparse.Namespace) -> float:
    return a.target_density if a.method == "oneshot" else (1 - a.rate) ** a.rounds


def cell(history: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """The ticket: its last round's scores per set, the dense round's, the run's seconds, the empty tensors."""
    got = sample.round_cell(history[-1], history, run_dir)
    kept = {k: got[k] for k in ("round", "density", "psnr", "input_psnr", "source")}
    return {**kept, **from_history(history), **{k: got[k] for k in ("empty_tensors", "tensors") if k in got}}


def from_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The dense round's scores (round 0: before any pruning) and the run's seconds on this machine."""
    return {"dense_psnr": sample.scores(history[0], "psnr")["psnr"], "seconds": sum(h["seconds"] for h in history)}


def overlaps(report: dict[str, Any]) -> None:
    """Every pair of finished tickets of a seed, the same ticket of two seeds, and each ticket against its
    init's magnitude mask (from the run directories, once each), kept in the report."""
    res = report["results"]

    def stored(ov: Any, r: int) -> dict[str, Any]:
        return {"iou": ov.iou, "random_iou": ov.random_iou, "round": r}

    def pair(store: dict[str, Any], key: str, x: dict[str, Any] | None, y: dict[str, Any] | None) -> None:
        if key in store or not (x and y) or x["round"] != y["round"]:
            return
        if (ROOT / x["source"]).is_dir() and (ROOT / y["source"]).is_dir():
            store[key] = stored(run_overlap(ROOT / x["source"], ROOT / y["source"], round=x["round"])[1], x["round"])

    for seed, tickets in res.items():
        names = [t for t in TICKETS if t in tickets]
        for i, t in enumerate(names):
            for u in names[i:]:
                pair(report.setdefault("overlap", {}).setdefault(seed, {}), f"{t}|{u}", tickets[t], tickets[u])
        for x in tickets.values():  # results written before dense_psnr was kept: from the history
            if ("dense_psnr" not in x or "seconds" not in x) and (ROOT / x["source"]).is_dir():
                x.update(from_history(read_history(ROOT / x["source"])))
    ss = sorted(res, key=int)
    for t in TICKETS:
        store = report.setdefault("cross_seed_overlap", {}).setdefault(t, {})
        for i, s in enumerate(ss):
            for z in ss[i + 1 :]:
                pair(store, f"{s}|{z}", res[s].get(t), res[z].get(t))
    for seed, tickets in res.items():
        own = report.setdefault("init_overlap", {}).setdefault(seed, {})
        for t, x in tickets.items():
            if t not in own and (ROOT / x["source"]).is_dir():
                own[t] = stored(rewind_magnitude_overlap(ROOT / x["source"], round=x["round"])[1], x["round"])


def ious(vals: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over stored overlaps of the IoU and of its random expectation."""
    return {
        "iou": spread([v["iou"] for v in vals]),
        "random_iou": spread([v["random_iou"] for v in vals]),
        "n": len(vals),
    }


def served(res: dict[str, Any], t: str, both: list[str]) -> dict[str, Any]:
    """Task ``t``'s ticket against the all-in-one ticket on t's own sets, over the seeds that have both."""
    sets = list(res[both[0]][t]["psnr"])

    def mean(s: str, who: str, key: str = "psnr") -> float:
        return statistics.fmean(res[s][who][key][k] for k in sets)

    d = paired([mean(s, t) for s in both], [mean(s, "all") for s in both])
    dense = [s for s in both if "dense_psnr" in res[s][t] and "dense_psnr" in res[s]["all"]]
    # the same comparison before pruning: a gap already there is the training's, not the mask's
    dense_d = paired(*([mean(s, x, "dense_psnr") for s in dense] for x in (t, "all"))) if dense else None
    per_set = {}
    for k in sets:
        task, allin = ([res[s][x]["psnr"][k] for s in both] for x in (t, "all"))
        per_set[k] = {"task": spread(task), "all": spread(allin), "input": res[both[0]][t]["input_psnr"][k]}
        per_set[k]["diff"] = paired(task, allin)
    # all-in-one serves t: within TOLERANCE of (or above) the task ticket, and the interval of task - all
    # includes 0 or lies below (one seed: the mean alone decides); a ticket giving back its input learned nothing
    same = all(abs(res[s][t]["psnr"][k] - res[s][t]["input_psnr"][k]) < IDENTITY_DB for s in both for k in sets)
    inp = statistics.fmean(res[both[0]][t]["input_psnr"][k] for k in sets)
    return {
        "sets": sets,
        "task": spread([mean(s, t) for s in both]),
        "all": spread([mean(s, "all") for s in both]),
        "input": inp,
        "diff": d,
        "dense_diff": dense_d,
        "per_set": per_set,
        "n": len(both),
        "served": bool(d["mean"] <= TOLERANCE and (d["n"] < 2 or d["low"] <= 0)),
        "resolved": bool(d["n"] >= 2 and d["low"] > 0),
        "returns_input": same,
    }


def verdict(psnr: dict[str, Any], tasks: list[str]) -> str:
    """Does one all-in-one ticket serve every task; where not, what the seeds resolve and what explains it."""
    if missing := [t for t in tasks if t not in psnr]:
        return "incomplete: " + ", ".join(missing) + " not finished"
    lost = [t for t in tasks if not psnr[t]["served"]]
    if not lost:
        text = f"yes: the all-in-one ticket is within {TOLERANCE} dB of (or above) every task ticket"
    else:
        sure, noisy = [t for t in lost if psnr[t]["resolved"]], [t for t in lost if not psnr[t]["resolved"]]
        parts = ["the task's own ticket is better on " + ", ".join(f"{t} ({ci(psnr[t]['diff'])} dB)" for t in sure)]
        if noisy:
            n, ahead = max(psnr[t]["n"] for t in noisy), "it is also ahead" if sure else "the task ticket is ahead"
            parts.append(f"{ahead} by more than {TOLERANCE} dB, within the noise of {n} seed(s), on ")
            parts[-1] += ", ".join(f"{t} ({ci(psnr[t]['diff'])} dB)" for t in noisy)
        text = "no: " + "; ".join(parts[0 if sure else 1 :])
    if idle := [t for t in tasks if psnr[t]["returns_input"]]:
        text += f". The {' and '.join(idle)} " + ("tickets return their" if len(idle) > 1 else "ticket returns its")
        text += " degraded input exactly (every set, every seed): trained on that task alone the network did not "
        text += "learn it, so there the all-in-one ticket is compared with doing nothing"
    if before := [t for t in lost if (dd := psnr[t]["dense_diff"]) and dd["mean"] > TOLERANCE]:
        text += ". The gap is already there in the dense networks (task − all-in-one at round 0: "
        text += ", ".join(f"{t} {ci(psnr[t]['dense_diff'])} dB" for t in before)
        text += "): it comes from training on all tasks at once rather than from the all-in-one mask"
    if below := [t for t in tasks if psnr[t]["all"]["mean"] < psnr[t]["input"]]:
        text += ". The all-in-one ticket is below the degraded input on "
        text += ", ".join(f"{t} ({psnr[t]['all']['mean'] - psnr[t]['input']:+.2f} dB)" for t in below)
    return text


class TaskTickets(Benchmark):
    name, grows, view = "task_tickets", ("seeds", "run_tickets"), view

    def options(self, p: argparse.ArgumentParser) -> None:
        sample.add_args(p)
        p.add_argument("--method", default=None, choices=["imp", "oneshot"], help="default imp (oneshot: --quick)")
        p.add_argument("--rate", type=float, default=None, help=f"imp's rate per round (default 1 - sqrt({TARGET}))")
        p.add_argument("--rounds", type=int, default=2, help="imp rounds (default 2)")
        p.add_argument("--target-density", type=float, default=TARGET, help="oneshot's density")
        p.add_argument("--tickets", default=None, help=f"subset of {', '.join(TICKETS)} (all is kept)")

    def presets(self, a: argparse.Namespace, p: argparse.ArgumentParser) -> None:
        if a.quick:
            a.seeds, a.method, a.tickets = 1, a.method or "oneshot", a.tickets or "denoise,derain,all"
        if a.smoke:
            sample.smoke(a)
            a.tickets = a.tickets or "denoise,derain,all"
        a.method, a.rate = a.method or "imp", a.rate if a.rate is not None else 1 - math.sqrt(TARGET)
        names = [t.strip() for t in (a.tickets or ",".join(TICKETS)).split(",") if t.strip()]
        if unknown := [t for t in names if t not in TICKETS]:
            p.error(f"--tickets: unknown {', '.join(unknown)}; available: {', '.join(TICKETS)}")
        a.tickets = [t for t in TICKETS if t in names or t == "all"]

    def run_config(self, a: argparse.Namespace, seed: int, ticket: str) -> RunConfig:
        fixed = {"target_density": a.target_density} if a.method == "oneshot" else {"rounds": a.rounds}
        tasks = list(TICKETS[ticket] or []) or None
        return sample.config(
            a, seed, data_paths=sample.data_options(a), tasks=tasks, rate=a.rate, method=a.method, **fixed
        )

    def probe(self, a: argparse.Namespace) -> Any:
        built = build_run(self.run_config(a, a.seed0, "all").resolved())
        self.n_test = sample.n_test(built)
        return built

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        return {
            **sample.record(a, self.n_test),
            "method": a.method,
            "rounds": a.rounds if a.method == "imp" else None,
            "target_density": a.target_density if a.method == "oneshot" else None,
            "density": density(a),
            "tickets": {t: TICKETS[t] or list(ALL_TASKS) for t in TICKETS},
            "smoke": a.smoke,
            "run_tickets": a.tickets,
        }

    def grow(self, key: str, old: list[Any], new: list[Any]) -> list[Any]:
        return [t for t in TICKETS if t in {*old, *new}] if key == "run_tickets" else super().grow(key, old, new)

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        self.report, trainings = report, 2 if a.method == "oneshot" else a.rounds + 1
        out = []
        for s, t in ((s, t) for s in seeds(a) for t in a.tickets if t not in report["results"].get(str(s), {})):
            run = a.work / f"seed{s}" / t
            share = len(TICKETS[t] or ALL_TASKS) / len(ALL_TASKS)  # its evaluation scores its own sets only
            call, store = (sample.train_run, str(run), self.run_config(a, s, t)), self.storer(report, (str(s), t), run)
            out.append(Unit((str(s), t), "ticket", a.steps * trainings, share * trainings, call=call, store=store))
        return out

    def storer(self, report: dict[str, Any], key: tuple[str, ...], run: Path) -> Any:
        return lambda got: report["results"].setdefault(key[0], {}).update({key[1]: cell(got["history"], run)})

    def describe(self, a: argparse.Namespace, probe: Any) -> str:
        return (
            f"task tickets: mirl/{a.size}, sample recipe, {len(probe.test_sets)} test sets x {self.n_test} images; "
            f"{a.steps} steps/training; {route(a)} -> density {density(a):.4f}; seeds {seeds(a)}; tickets "
            f"{', '.join(a.tickets)}; {probe.threads.threads} thread(s)"
        )

    def say(self, unit: Unit, result: dict[str, Any]) -> str:
        got = self.report["results"][unit.key[0]][unit.key[1]]
        return f"density {got['density']:.4f}, mean PSNR {statistics.fmean(got['psnr'].values()):.2f} dB"

    def reread(self, a: argparse.Namespace, report: dict[str, Any]) -> None:
        c = report["config"]  # the table describes what was run, not this invocation's defaults
        a.tickets, a.method, a.rate = c["run_tickets"], c["method"], c["rate"]
        a.rounds = c["rounds"] if c["rounds"] is not None else a.rounds
        a.target_density = c["target_density"] if c["target_density"] is not None else a.target_density
        a.steps, a.test_degradations, a.size = c["steps"], c["test_degradations"], c["model"].split("/")[1]

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        overlaps(report)
        res, ovs = report["results"], report.get("overlap", {})
        ss = sorted(res, key=int)
        names = [t for t in TICKETS if any(t in res[s] for s in ss)]
        matrix: dict[str, dict[str, Any]] = {}
        for x in names:
            for y in names:
                key = f"{x}|{y}" if names.index(x) <= names.index(y) else f"{y}|{x}"
                if vals := [ovs[s][key] for s in ss if key in ovs.get(s, {})]:
                    m = ious(vals)
                    rnd = m["random_iou"]["mean"]
                    matrix.setdefault(x, {})[y] = {**m, "ratio": m["iou"]["mean"] / rnd if rnd else math.nan}
        init: dict[str, Any] = {}
        for t in names:
            if vals := [v for s in ss if (v := report.get("init_overlap", {}).get(s, {}).get(t))]:
                init[t] = ious(vals)
                if pairs := list(report.get("cross_seed_overlap", {}).get(t, {}).values()):
                    init[t]["cross_seed"] = ious(pairs)
        both = {t: [s for s in ss if t in res[s] and "all" in res[s]] for t in names if t != "all"}
        psnr = {t: served(res, t, b) for t, b in both.items() if b}
        secs = [res[s][t]["seconds"] for s in ss for t in res[s] if "seconds" in res[s][t]]
        return {
            "density": density(a),
            "tickets": names,
            "overlap": matrix,
            "init_overlap": init,
            "psnr": psnr,
            "seconds": secs,
            "seconds_total": sum(secs),
            # tensors pruned to nothing, the most over seeds, of how many
            "empty_tensors_max": {
                t: max(len(res[s][t].get("empty_tensors", [])) for s in ss if t in res[s]) for t in names
            },
            "tensors": max((res[s][t].get("tensors", 0) for s in ss for t in res[s]), default=0),
            "verdict": verdict(psnr, [t for t in a.tickets if t != "all"]),
        }


if __name__ == "__main__":
    sys.exit(main(TaskTickets()))
