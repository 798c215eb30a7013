"""Cost against quality: every pruning method at densities 0.262 and 0.107, paired against IMP over seeds.

mirl/tiny on the sample recipe as `lotteryir prune` trains it (harness/sample.py). Each variant
(imp, oneshot, gmp, early-bird, snip, synflow, snip+shuffle, synflow+shuffle, lr-rewind) is a
``PruningRun`` with ``RunConfig(method=...)`` under --work; the densities are IMP's after 6 and 10
rounds. All variants of a seed share its initialization and data order: differences against IMP are
paired. IMP comes from lottery_tickets.json when it trained exactly this (every setting, the degraded
inputs, and the dense round 0 oneshot and lr-rewind train here), else it trains here. Reported per
density: PSNR (six-set mean, denoising mean, per set) beside the degraded input, optimizer steps and
training time, differences against IMP with 95% t-intervals, who wins where, and the cheapest method
with IMP's quality. docs/benchmarks.md says more.

    python benchmarks/cost_quality.py --seeds 3          # the full run (~2 h on 2 cores; resumable)
    python benchmarks/cost_quality.py --quick            # 1 seed, density 0.262, no lr-rewind (~15 min)
    python benchmarks/cost_quality.py --smoke --out /tmp/cq.json   # seconds: 3 steps, 2 photos a set
    python benchmarks/cost_quality.py --report-only      # table and figure from the results file
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from harness import ROOT, Benchmark, Unit, differences, ints, main, relative, sample, seeds, spread, spreads
from reports import cost_quality as view

from lotteryir.runs import RunConfig, RunLayout, build_run, read_history

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
TOLERANCE_DB = 0.1  # "IMP's quality": the mean difference above -0.1 dB and its interval reaching 0
COST_SHARE = 0.25  # "cheap": at most a quarter of IMP's optimizer steps


def dkey(density: float) -> str:
    return f"{density:.4f}"


def metrics_of(c: dict[str, Any]) -> dict[str, float]:
    """The numbers compared between variants: the means and each set."""
    return {"mean": c["mean_psnr"], "denoise": sample.denoise_mean(c["psnr"]), **c["psnr"]}


def reused_cells(source: dict[str, Any], seed: int, r: int, steps: int) -> dict[str, Any]:
    """IMP at round ``r`` and the dense network from lottery_tickets' records of one seed; the cost counts
    every round's training (the unreported rounds' take the mean of the recorded)."""
    rows = {int(q): row for q, row in next(x for x in source["runs"] if x["seed"] == seed)["rounds"].items()}
    out = {}
    for name, variant, q in (("imp", "imp_init", r), ("dense", "dense", 0)):
        secs = [rows[p]["variants"]["dense" if p == 0 else "imp_init"]["train_seconds"] for p in rows if p <= q]
        missing = q + 1 - len(secs)
        cost = {
            "trainings": q + 1,
            "steps": (q + 1) * steps,
            "train_seconds": sum(secs) + missing * statistics.fmean(secs),
        }
        x = rows[q]["variants"][variant]
        out[name] = {"round": q, "density": rows[q]["density"], **{k: x[k] for k in ("psnr", "ssim", "input_psnr")}}
        out[name].update(mean_psnr=x["mean_psnr"], mean_ssim=x["mean_ssim"], cost=cost)
        out[name]["cost"]["estimated_seconds_of_rounds"] = missing
        out[name]["source"] = f"{relative(sample.LOTTERY_TICKETS)} (seed {seed})"
    return out


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
            if cheap and d[k]["mean"] >= -TOLERANCE_DB and (d[k]["n"] < 2 or d[k]["high"] >= 0):
                ok.append((x["steps"]["mean"], -d[k]["mean"], v))
        out[k] = min(ok)[2] if ok else None
    return out


class CostQuality(Benchmark):
    name, grows, depth, view = "cost_quality", ("seeds", "methods"), 3, view
    notes = "early-bird counted as 2 full trainings"

    def options(self, p: argparse.ArgumentParser) -> None:
        sample.add_args(p)
        p.add_argument("--rate", type=float, default=0.2, help="imp's and lr-rewind's rate per round")
        p.add_argument("--rounds", default=None, help="the densities as imp rounds at --rate (default 6,10)")
        p.add_argument("--methods", default=None, help=f"subset of {', '.join(VARIANTS)} (default all)")
        p.add_argument("--reuse", default=str(sample.LOTTERY_TICKETS), help="lottery_tickets' results for IMP, or none")

    def presets(self, a: argparse.Namespace, p: argparse.ArgumentParser) -> None:
        if a.quick:
            a.seeds, a.rounds = 1, a.rounds or "6"
            a.methods = a.methods or ",".join(v for v in VARIANTS if v != "lr-rewind")
        if a.smoke:
            sample.smoke(a)
            a.rounds, a.methods = a.rounds or "2", a.methods or "imp,oneshot,snip+shuffle"
        a.rounds = ints(p, "--rounds", a.rounds or "6,10", least=1)
        methods = [m.strip() for m in (a.methods or ",".join(VARIANTS)).split(",") if m.strip()]
        if unknown := [m for m in methods if m not in VARIANTS]:
            p.error(f"--methods: unknown {', '.join(unknown)}; available: {', '.join(VARIANTS)}")
        a.methods = [v for v in VARIANTS if v in methods or v == "imp"]  # imp: the reference of every difference

    def run_config(self, a: argparse.Namespace, seed: int, variant: str, rounds: int) -> RunConfig:
        method, shuffle = VARIANTS[variant]
        fixed = {"rounds": rounds} if variant in ROUND_BASED else {"target_density": (1 - a.rate) ** rounds}
        settings = {"data_paths": sample.data_options(a), "rate": a.rate, "method": method, **fixed}
        return sample.config(a, seed, shuffle_within_layers=shuffle, **settings)

    def probe(self, a: argparse.Namespace) -> Any:
        built = build_run(self.run_config(a, a.seed0, "oneshot", a.rounds[0]).resolved())
        self.inputs, self.n_test = sample.input_psnr(built.test_sets, a.device), sample.n_test(built)
        return built

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        densities = [(1 - a.rate) ** r for r in a.rounds]
        extra = {"rounds": a.rounds, "densities": densities, "methods": a.methods, "smoke": a.smoke}
        return {**sample.record(a, self.n_test), **extra}

    def grow(self, key: str, old: list[Any], new: list[Any]) -> list[Any]:
        return [v for v in VARIANTS if v in {*old, *new}] if key == "methods" else super().grow(key, old, new)

    def prepare(self, a: argparse.Namespace, report: dict[str, Any], probe: Any) -> None:
        """IMP from lottery_tickets when it trained exactly this. Once the dense round 0 trained here was
        seen to differ from its dense network, the reused cells are dropped and IMP trains here."""
        self.report, res = report, report["results"]
        seen = max(report.get("dense_check") or 0.0, (report.get("stale_reuse") or {}).get("dense_check") or 0.0)
        here = {"here": seen if seen > sample.DENSE_TOLERANCE_DB else report.get("dense_check")}
        dense = {"setting": "dense round 0 trained here (max |dPSNR| per set, dB)", "lottery_tickets": 0.0, **here}
        dense["equal"] = seen <= sample.DENSE_TOLERANCE_DB
        fingerprint = (self.inputs, self.n_test, a.rounds)
        self.source = sample.reuse(a, report, fingerprint, ("reused from", "trained here"), (dense,))
        if self.source is None and (dropped := sample.drop_reused(res, ("imp", "dense"))):
            # the check compared with the reused dense network: keep it as the reason, start afresh
            report["stale_reuse"] = {"dense_check": report.pop("dense_check", None), "cells_dropped": dropped}
        for s, r in ((s, r) for s in seeds(a) for r in a.rounds) if self.source else ():
            got = reused_cells(self.source, s, r, a.steps)
            res.setdefault(str(s), {}).setdefault("imp", {})[dkey((1 - a.rate) ** r)] = got["imp"]
            res[str(s)]["dense"] = {"dense": got["dense"]}

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        """imp first at the lowest density, then the one-shot methods by seed and density, then lr-rewind
        and imp to their further densities (each continuing its own run, after it)."""
        first, res = a.rounds[0], report["results"]
        jobs = [(s, "imp", first) for s in seeds(a)]
        jobs += [(s, v, r) for s in seeds(a) for r in a.rounds for v in a.methods if v not in ROUND_BASED]
        for v in ("lr-rewind", "imp") if "lr-rewind" in a.methods else ("imp",):
            jobs += [(s, v, r) for r in (a.rounds if v == "lr-rewind" else a.rounds[1:]) for s in seeds(a)]
        out: list[Unit] = []
        reached: dict[tuple[int, str], int] = {}
        for s, v, r in jobs:
            if (key := dkey((1 - a.rate) ** r)) in res.get(str(s), {}).get(v, {}):
                continue
            based = v in ROUND_BASED
            directory = a.work / f"seed{s}" / (v if based else f"{v}-{key}")
            trainings = r - reached.get((s, v), -1) if based else TRAININGS[VARIANTS[v][0]]
            reached[(s, v)] = r
            call = (
                sample.train_run,
                str(directory),
                self.run_config(a, s, v, sample.rounds_taken(directory, r) if based else r),
            )
            # after the same run's earlier density, and after the dense round the others are checked against
            after = [u.key for u in out if u.key[0] == str(s) and u.key[1] == v or u.key == (str(s), "imp", first)]
            store = self.storer(a, report, (str(s), v), directory, r)
            out.append(
                Unit((str(s), v, key), v, a.steps * trainings, trainings, call=call, after=(*after,), store=store)
            )
        return out

    def storer(self, a: argparse.Namespace, report: dict[str, Any], sv: tuple[str, str], run: Path, rounds: int) -> Any:
        def store(got: dict[str, Any]) -> None:
            history, (seed, variant) = got["history"], sv
            mine = report["results"].setdefault(seed, {})
            for entry in history:  # imp and lr-rewind: every reported round reached; the others: their last
                r = entry["round"] if variant in ROUND_BASED else rounds if entry is history[-1] else None
                if r in a.rounds:
                    mine.setdefault(variant, {})[dkey((1 - a.rate) ** r)] = sample.round_cell(entry, history, run)
            if variant == "imp" and "dense" not in mine:
                mine["dense"] = {"dense": sample.round_cell(history[0], history, run)}
            if variant in ("oneshot", "lr-rewind") and "dense" in mine:  # the same dense training as imp's
                diff = sample.gap(sample.round_cell(history[0], history, run)["psnr"], mine["dense"]["dense"]["psnr"])
                report["dense_check"] = max(report.get("dense_check") or 0.0, diff)

        return store

    def finish(self, a: argparse.Namespace, report: dict[str, Any]) -> None:
        """Every finished oneshot / lr-rewind run on disk against the dense round IMP trained here, not only
        this sitting's: a sitting that trains IMP after the others ran still checks them."""
        diffs = []
        for per_seed in report["results"].values():
            dense = per_seed.get("dense", {}).get("dense")
            for c in (c for v in ("oneshot", "lr-rewind") for c in per_seed.get(v, {}).values() if dense):
                if RunLayout(run := ROOT / c["source"]).history.is_file():
                    diffs.append(sample.gap(sample.round_cell(read_history(run)[0], [], run)["psnr"], dense["psnr"]))
        if diffs and self.source is None:
            report["dense_check"] = max(diffs)

    def describe(self, a: argparse.Namespace, probe: Any) -> str:
        params, densities = (
            sum(p.numel() for p in probe.model.parameters()),
            [round((1 - a.rate) ** r, 4) for r in a.rounds],
        )
        return (
            f"cost vs quality: mirl/{a.size} ({params:,} params), sample recipe, {len(self.inputs)} test sets x "
            f"{self.n_test} images; {a.steps} steps/training; densities {densities}; seeds {seeds(a)}; methods "
            f"{', '.join(a.methods)}; {probe.threads.threads} thread(s)"
        )

    def say(self, unit: Unit, result: dict[str, Any]) -> str:
        got = self.report["results"][unit.key[0]].get(unit.key[1], {}).get(unit.key[2])
        return f"mean PSNR {got['mean_psnr']:.2f} dB, {got['cost']['steps']} steps" if got else "(no cell?)"

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        """Per density and variant: spreads over seeds, cost, and the paired differences against IMP."""
        ss, res = [str(s) for s in seeds(a)], report["results"]
        dense = [res[s]["dense"]["dense"] for s in ss if "dense" in res.get(s, {})]
        summary: dict[str, Any] = {"densities": []}
        if first := next((c for s in ss for v in res.get(s, {}).values() for c in v.values()), None):
            inp = first["input_psnr"]  # every variant scores the same degraded inputs
            summary["input"] = {
                "psnr": inp,
                "mean": statistics.fmean(inp.values()),
                "denoise": sample.denoise_mean(inp),
            }
        if dense:
            steps = spread([d["cost"]["steps"] for d in dense])
            summary["dense"] = {"n": len(dense), "psnr": spreads([metrics_of(d) for d in dense]), "steps": steps}
        for r in a.rounds:
            key = dkey((1 - a.rate) ** r)
            row: dict[str, Any] = {"rounds": r, "density": (1 - a.rate) ** r, "variants": {}, "paired": {}, "wins": {}}
            for v in report["config"]["methods"]:
                if not (cs := [res[s][v][key] for s in ss if key in res.get(s, {}).get(v, {})]):
                    continue
                row["variants"][v] = {"n": len(cs), "density": statistics.fmean(c["density"] for c in cs)}
                row["variants"][v]["psnr"] = spreads([metrics_of(c) for c in cs])
                row["variants"][v].update({k: spread([c["cost"][k] for c in cs]) for k in ("steps", "trainings")})
                row["variants"][v]["train_seconds"] = spread([c["cost"]["train_seconds"] for c in cs])
                masked = [c for c in cs if "tensors" in c]  # reused IMP cells carry no masks: unknown, not none
                empty = max((len(c.get("empty_tensors", [])) for c in masked), default=None)
                row["variants"][v]["empty_tensors"] = empty
                row["variants"][v]["tensors"] = max((c["tensors"] for c in masked), default=None)
                if v != "imp" and (
                    both := [s for s in ss if key in res.get(s, {}).get(v, {}) and key in res[s].get("imp", {})]
                ):
                    row["paired"][v] = differences(*([metrics_of(res[s][x][key]) for s in both] for x in (v, "imp")))
            vs = row["variants"]
            for k in next(iter(vs.values()))["psnr"] if vs else []:
                best = max(vs, key=lambda n: vs[n]["psnr"][k]["mean"])
                above = [n for n, d in row["paired"].items() if d[k]["low"] > 0]
                row["wins"][k] = {
                    "best": best,
                    "above_imp": above,
                    "below_imp": [n for n, d in row["paired"].items() if d[k]["high"] < 0],
                }
            row["verdict"] = verdict(row, a.seeds)
            summary["densities"].append(row)
        return summary

    def figure(self, report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
        view.figure(report, a, path, list(VARIANTS))


if __name__ == "__main__":
    sys.exit(main(CostQuality()))
