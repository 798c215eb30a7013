"""Is the ticket stable? Linear mode connectivity (Frankle et al. 2020) of mirl/tiny, dense and IMP tickets.

Per seed: an IMP run to round 10 gives the dense network and the tickets at 0.262 and 0.107; per network
and rewind step k (0, 2%, 5%, 10% of a training) ``run_stability`` trains two copies from k and scores the
line between them (barrier; stable: <= 0.1 dB); the 0.107 ticket retrained from its smallest stable k
against the run's own round and random reinit, paired over seeds. Budget: docs/benchmarks.md.

    python benchmarks/stability.py --seeds 3          # the full run (2.3 h on 2 cores with 2 workers)
    python benchmarks/stability.py --quick            # 1 seed, the ticket at 0.64 (2 rounds), k = 0, 60
    python benchmarks/stability.py --smoke --out /tmp/st.json   # seconds: the test suite's run
    python benchmarks/stability.py --report-only      # tables and figure from the results file
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from typing import Any

from harness import Benchmark, Unit, ci, differences, ints, main, nan, relative, sample, seeds, side, spread, spreads
from reports import stability as view

from lotteryir.analysis import DEFAULT_THRESHOLD, MIN_POINTS, run_stability, smallest_stable, states_at_steps
from lotteryir.analysis.stability import start_from
from lotteryir.pruning import Mask, RoundContext, attach_masks, reinitialize
from lotteryir.runs import RunConfig, RunLayout, build_run, read_config, read_history

REWIND_FRACTIONS = (0.0, 0.02, 0.05, 0.10)  # of a training: k = 0, 12, 30, 60 at 600 steps


# -- the units (each runs in a worker process, or in this one with --workers 1) ------------
def imp_unit(directory: str, config: RunConfig, networks: list[int]) -> dict[str, Any]:
    """One seed's IMP run, trained (or resumed) to its last round; the analysed rounds' scores."""
    t0, cells = time.perf_counter(), {}
    for h in (h for h in sample.train_run(directory, config)["history"] if h["round"] in networks):
        scores = sample.scores(h, "psnr", "input_psnr")
        cells[str(h["round"])] = {"round": h["round"], "density": h["density"], **scores, "mean_psnr": h["mean_psnr"]}
    return {"cells": cells, "seconds": time.perf_counter() - t0, "source": relative(directory)}


def stability_unit(directory: str, r: int, k: int, points: int, threshold: float, images: int | None) -> dict:
    """The path from rewind step k of round r's network: ``run_stability`` itself, nothing stored in the run."""
    t0 = time.perf_counter()
    options = {"points": points, "threshold": threshold, "save": False, "test_images": images}
    got = run_stability(directory, round=r, rewind_steps=[k], **options)
    inputs = {"input_psnr": got.input_psnr, "mean_input_psnr": got.mean_input_psnr}
    entry = got.to_dict()["rewind_steps"][0]
    return {"round": r, "density": got.density, **inputs, **entry, "seconds": time.perf_counter() - t0}


def retrain_ticket(directory: str, r: int, k: int) -> dict[str, Any]:
    """Round r's ticket retrained from step k of the run's replayed round 0 (pruned entries zero) by the run's
    trainer in round r's context: as a ``--rewind step:K`` run trains it; at k = 0 the run's round r itself."""
    t0, config = time.perf_counter(), read_config(directory)
    built = build_run(config)
    model = start_from(built.model, states_at_steps(built, [k])[k])  # a copy holding the step-k weights
    mask = Mask.load(RunLayout(directory).mask(r))
    attach_masks(model, mask)
    return {"k": k, **train_and_score(built, model, RoundContext.for_round(r, mask.density, seed=config.seed), t0)}


def reinit_unit(directory: str, r: int) -> dict[str, Any]:
    """Random reinit at round r's density, as the run's ``random_reinit`` control trains: round r's mask on a
    fresh initialization drawn under the control's seed (``seed + 7919 r``, the pruner's), the run's trainer."""
    t0, config = time.perf_counter(), read_config(directory)
    built = build_run(config)
    mask = Mask.load(RunLayout(directory).mask(r))
    reinitialize(built.model, config.seed + 7919 * r, factory=built.fresh_model)
    attach_masks(built.model, mask)
    ctx = RoundContext.for_round(r, mask.density, "random_reinit", seed=config.seed)
    got = train_and_score(built, built.model, ctx, t0)
    return {**got, "trained": True, "source": f"trained here (random_reinit of {relative(directory)}, round {r})"}


def train_and_score(built: Any, model: Any, ctx: RoundContext, t0: float) -> dict[str, Any]:
    """Train ``model`` with the run's own trainer in ``ctx``, score it on the full test sets."""
    train, got = built.trainer(model, ctx), built.evaluate(model)
    per_set = {k: {label: s[k] for label, s in got["eval"].items()} for k in ("psnr", "input_psnr")}
    end = {"mean_psnr": got["mean_psnr"], "train_loss": train.get("loss"), "seconds": time.perf_counter() - t0}
    return {"round": ctx.round, "density": ctx.density, **per_set, **end}


# -- reading the results -------------------------------------------------------------------
def late_step(a: argparse.Namespace, res: dict[str, Any]) -> tuple[int, bool] | None:
    """(k, stable) for the late ticket: the smallest stable k of the late network, else the largest measured."""
    paths = res.get("stability", {}).get(str(a.late_round), {})
    if any(str(k) not in paths for k in a.rewind_steps):
        return None
    stable = smallest_stable({k: nan(paths[str(k)]["mean_barrier"]) for k in a.rewind_steps}, a.threshold)
    return (stable, True) if stable is not None else (max(a.rewind_steps), False)


def check_reinit(report: dict[str, Any]) -> None:
    """Drop the reused random reinit where lottery_tickets' dense round differs from the IMP runs' round 0."""
    dense = {s: res.get("imp", {}).get("cells", {}).get("0", {}).get("psnr") for s, res in report["results"].items()}
    sample.check_reused(report, "reinit", dense)


def verdict(late: dict[str, Any]) -> str:
    """What late rewinding does to the ticket, and to its lead over random reinit (Frankle et al. 2020)."""
    d, ks = late["late_minus_init"]["mean"], sorted(set(late["k_per_seed"].values()))
    where = side(d)
    said = {"above 0": "late rewinding improves the ticket", "below 0": "late rewinding worsens the ticket"}
    text = f"Late rewinding (k = {', '.join(map(str, ks))}) minus rewinding to init, mean PSNR: {ci(d)} dB, {where}: "
    text += said.get(where, "no difference the seeds resolve") + "."
    if any(k == 0 for k in late["k_per_seed"].values()):
        text += " (Where k = 0 is stable the late ticket is the run's round itself: difference 0 for that seed.)"
    if "init_minus_reinit" not in late:
        return text + " Random reinit: not finished for these seeds yet."
    gi, gl = late["init_minus_reinit"]["mean"], late["late_minus_reinit"]["mean"]
    lead = {"above 0": "widens the ticket's lead", "below 0": "shrinks the ticket's lead"}
    change = lead.get(where, "does not change the ticket's lead") + " over random reinit"
    change += "" if where in lead else " beyond the noise"
    already = "already beats" if side(gi) == "above 0" else "does not beat"
    return text + (
        f" Ticket minus random reinit: rewound to init {ci(gi)} dB ({side(gi)}), late-rewound {ci(gl)} dB "
        f"({side(gl)}). Late rewinding {change}; the ticket rewound to init {already} random reinit."
    )


class Stability(Benchmark):
    name, workers, view = "stability", 2, view
    notes = "each worker at the step measured now; late tickets counted as trained from the largest k"

    def options(self, p: argparse.ArgumentParser) -> None:
        sample.add_args(p)
        p.add_argument("--rate", type=float, default=0.2, help="IMP's rate per round")
        p.add_argument("--networks", default=None, help="IMP rounds analysed (default 0,6,10: 1, 0.262, 0.107)")
        p.add_argument("--rewind-steps", default=None, help="rewind steps k (default 0, 2%%, 5%%, 10%% of --steps)")
        p.add_argument("--path-images", default=None, help="images a test set for the path (2; smoke 1), or all")
        p.add_argument("--points", type=int, default=MIN_POINTS, help=f"points on each path (at least {MIN_POINTS})")
        p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="stable: barrier <= this (dB)")
        p.add_argument("--reuse", default=str(sample.LOTTERY_TICKETS), help="lottery_tickets' random reinit, or none")

    def presets(self, a: argparse.Namespace, p: argparse.ArgumentParser) -> None:
        if a.quick:
            a.seeds, a.networks = 1, a.networks or "2"
            a.rewind_steps = a.rewind_steps or f"0,{round(0.1 * a.steps)}"
        if a.smoke:
            sample.smoke(a, steps=4)
            a.networks, a.rewind_steps = a.networks or "0,2", a.rewind_steps or "0,2"
            a.workers, a.path_images = a.workers or 1, a.path_images or "1"
        a.networks = ints(p, "--networks", a.networks or "0,6,10")
        ks = a.rewind_steps or ",".join(str(round(f * a.steps)) for f in REWIND_FRACTIONS)
        a.rewind_steps = ints(p, "--rewind-steps", ks)
        if a.rewind_steps[-1] >= a.steps:
            p.error(f"--rewind-steps must be below --steps ({a.steps}), got {a.rewind_steps}")
        a.path_images = a.path_images or "2"
        if a.path_images != "all" and (not a.path_images.isdigit() or int(a.path_images) < 1):
            p.error(f"--path-images must be a positive integer or 'all', got {a.path_images!r}")
        a.path_images = None if a.path_images == "all" else int(a.path_images)
        if a.points < MIN_POINTS:
            p.error(f"--points must be at least {MIN_POINTS}")
        a.late_round = a.networks[-1]  # the sparsest network analysed gets the late-rewind retraining

    def run_config(self, a: argparse.Namespace, seed: int) -> RunConfig:
        return sample.config(a, seed, data_paths=sample.data_options(a), rounds=a.late_round, rate=a.rate)

    def probe(self, a: argparse.Namespace) -> Any:
        built = build_run(self.run_config(a, a.seed0).resolved())
        self.inputs, self.n_test = sample.input_psnr(built.test_sets, a.device), sample.n_test(built)
        return built

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        densities = [(1 - a.rate) ** r for r in a.networks]
        paths = {"rewind_steps": a.rewind_steps, "points": a.points, "threshold": a.threshold}
        late = {"path_images_per_set": a.path_images, "late_round": a.late_round, "smoke": a.smoke}
        networks = {"imp_rounds": a.late_round, "networks": a.networks, "densities": densities}
        return {**sample.record(a, self.n_test), **networks, **paths, **late}

    def prepare(self, a: argparse.Namespace, report: dict[str, Any], probe: Any) -> None:
        """Random reinit at the late network's density from lottery_tickets when it trained exactly this."""
        self.report, fingerprint = report, (self.inputs, self.n_test, [a.late_round])
        source = sample.reuse(a, report, fingerprint, ("from", "not available"))
        report["reinit"] = sample.reused_variant(source, seeds(a), a.late_round, "random_reinit")
        print(f"random reinit at round {a.late_round}: {report['reuse']['summary']}")

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        """Per seed: its IMP run; the late network's paths, late ticket and random reinit; the others' paths."""
        out: list[Unit] = []
        share = (self.n_test if a.path_images is None else min(a.path_images, self.n_test)) / self.n_test
        for s in seeds(a):
            res, run, sk = report["results"].get(str(s), {}), str(a.work / f"seed{s}" / "imp"), str(s)
            if "imp" not in res:
                todo = a.late_round + 1 - (len(read_history(run)) if RunLayout(run).history.is_file() else 0)
                call = (imp_unit, run, self.run_config(a, s), a.networks)
                out.append(Unit((sk, "imp"), "imp", a.steps * todo, todo, call=call))
            imp = tuple(u.key for u in out if u.key == (sk, "imp"))
            for r in [a.late_round, *[r for r in reversed(a.networks) if r != a.late_round]]:
                for k in (k for k in a.rewind_steps if str(k) not in res.get("stability", {}).get(str(r), {})):
                    call = (stability_unit, run, r, k, a.points, a.threshold, a.path_images)
                    steps, evals = 2 * (a.steps - k) + k, a.points * share
                    out.append(Unit((sk, "stability", str(r), str(k)), "path", steps, evals, call=call, after=imp))
                if r == a.late_round and "late" not in res:
                    paths = tuple(u.key for u in out if u.key[:3] == (sk, "stability", str(r)))
                    late = Unit((sk, "late"), "late", a.steps + max(a.rewind_steps), 1, after=(*imp, *paths))
                    late.start, late.store = (
                        partial(self.late, a, report, sk, run),
                        partial(self.late_done, a, report, sk),
                    )
                    out.append(late)
                if r == a.late_round and "reinit" not in res:
                    start = partial(self.reinit, report, sk, run, r)
                    out.append(Unit((sk, "reinit"), "reinit", a.steps, 1, after=imp, start=start))
        return out

    def late(self, a: argparse.Namespace, report: dict[str, Any], sk: str, run: str) -> Any:
        """The late ticket: from the smallest stable k (k = 0: the run's own round, nothing trains)."""
        res, step = report["results"][sk], late_step(a, report["results"][sk])
        if step is None or step[0] != 0:
            return None if step is None else (retrain_ticket, run, a.late_round, step[0])
        return {**res["imp"]["cells"][str(a.late_round)], "k": 0, "stable": True, "seconds": 0.0, "trained": False}

    def late_done(self, a: argparse.Namespace, report: dict[str, Any], sk: str, got: dict[str, Any]) -> None:
        step, res = late_step(a, report["results"][sk]), report["results"][sk]
        res["late"] = {**got, "stable": bool(step and step[1]), "trained": got.get("trained", True)}

    def reinit(self, report: dict[str, Any], sk: str, run: str, r: int) -> Any:
        check_reinit(report)  # the dense round trained here decides whether lottery_tickets' is the same
        if sk in report.get("reinit", {}):
            return {**report["reinit"][sk], "trained": False, "seconds": 0.0}
        return (reinit_unit, run, r)

    def describe(self, a: argparse.Namespace, probe: Any) -> str:
        path_n = self.n_test if a.path_images is None else min(a.path_images, self.n_test)
        return (
            f"stability: mirl/{a.size}, sample recipe, {len(self.inputs)} test sets x {self.n_test} images (paths on "
            f"{path_n} a set); {a.steps} steps/training; IMP to round {a.late_round}; networks at rounds {a.networks}; "
            f"k = {a.rewind_steps}; {a.points} points; seeds {seeds(a)}; {a.threads} thread(s) x {a.workers} worker(s)"
        )

    def say(self, unit: Unit, got: dict[str, Any]) -> str:
        if "mean_barrier" in got:
            return f"barrier {nan(got['mean_barrier']):.3f} dB"
        return ", ".join(
            f"{q} mean PSNR {c['mean_psnr']:.2f} dB".strip() for q, c in got.get("cells", {"": got}).items()
        )

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        """Barriers per network and k over seeds, smallest stable k, mean paths, and the late-rewind comparison."""
        check_reinit(report)
        ss, res = [str(s) for s in report["config"]["seeds"]], report["results"]
        summary: dict[str, Any] = {"networks": [self.network(a, res, ss, r) for r in a.networks], "late": None}
        if not (late := {s: res[s]["late"] for s in ss if "late" in res.get(s, {})}):
            return summary
        init = {s: res[s]["imp"]["cells"][str(a.late_round)] for s in late}
        reinit = {s: res[s]["reinit"] for s in ss if "reinit" in res.get(s, {})}  # trained here, or reused
        both, first = sorted(late), init[min(late)]

        def m(cells: dict[str, Any], which: list[str]) -> list[dict[str, float]]:
            return [{"mean": cells[s]["mean_psnr"], **cells[s]["psnr"]} for s in which]

        out: dict[str, Any] = {"n": len(both), "k_per_seed": {s: late[s]["k"] for s in both}}
        out["stable_per_seed"] = {s: late[s]["stable"] for s in both}
        out["input"] = {"mean": statistics.fmean(first["input_psnr"].values()), **first["input_psnr"]}
        out.update(late=spreads(m(late, both)), init=spreads(m(init, both)))
        out["late_minus_init"] = differences(m(late, both), m(init, both))
        if withre := [s for s in both if s in reinit]:
            out["reinit"] = spreads(m(reinit, withre))
            out["init_minus_reinit"] = differences(m(init, withre), m(reinit, withre))
            out["late_minus_reinit"] = differences(m(late, withre), m(reinit, withre))
        summary["late"] = {**out, "verdict": verdict(out)}
        return summary

    def network(self, a: argparse.Namespace, res: dict[str, Any], ss: list[str], r: int) -> dict[str, Any]:
        """One network's barriers per k over the seeds, its smallest stable k per seed and on the mean."""
        row: dict[str, Any] = {"round": r, "density": (1 - a.rate) ** r, "k": {}, "stable_per_seed": {}}
        paths = {s: res.get(s, {}).get("stability", {}).get(str(r), {}) for s in ss}
        for k in a.rewind_steps:
            if not (cells := [paths[s][str(k)] for s in ss if str(k) in paths[s]]):
                continue
            curves = [[nan(v) for v in c["mean_psnr"]] for c in cells]
            row["k"][str(k)] = {
                "n": len(cells),
                "mean_barrier": spread([nan(c["mean_barrier"]) for c in cells]),
                "barrier": {lab: spread([nan(c["barrier"][lab]) for c in cells]) for lab in cells[0]["barrier"]},
                "endpoints": spread([statistics.fmean((cu[0], cu[-1])) for cu in curves]),
                "lowest": spread([min(cu) for cu in curves]),
                # The barrier is at least half the endpoints' gap (the lower copy is below their mean).
                "half_gap": spread([abs(cu[0] - cu[-1]) / 2 for cu in curves]),
                "alphas": cells[0]["alphas"],
                "mean_path": [statistics.fmean(cu[i] for cu in curves) for i in range(len(curves[0]))],
                "input_psnr": statistics.fmean(nan(c["mean_input_psnr"]) for c in cells),
                "input_psnr_per_set": cells[0]["input_psnr"],
                "steps": cells[0]["steps"],
            }
        for s in (s for s in ss if all(str(k) in paths[s] for k in a.rewind_steps)):
            barriers = {k: nan(paths[s][str(k)]["mean_barrier"]) for k in a.rewind_steps}
            row["stable_per_seed"][s] = smallest_stable(barriers, a.threshold)
        done = [k for k in a.rewind_steps if row["k"].get(str(k), {}).get("n") == len(ss)]
        means = {k: row["k"][str(k)]["mean_barrier"]["mean"] for k in done}
        row["stable_on_mean"] = smallest_stable(means, a.threshold) if len(done) == len(a.rewind_steps) else None
        return row


if __name__ == "__main__":
    sys.exit(main(Stability()))
