"""Are the tickets real? IMP tickets against clean controls, over seeds, with paired confidence intervals.

Ten rounds of 20% global magnitude pruning take mirl/tiny to 0.107. Per seed (one unit): dense (round
0); imp_init, the IMP ticket rewound to init; random_reinit (its mask on a fresh initialization) and
random_prune (a random mask with its per-layer densities on the initial weights), trained at the
reported densities; with --late-rewind K, imp_step (IMP rewinding to step K). Differences are paired
over seeds (95% t-intervals). The verdict: at 0.107 the ticket within 0.1 dB of dense or better; at
every reported density <= 0.33, >= 0.5 dB above each control with the interval above 0. --curve trains
the dense network for several step budgets on the validation split: how --steps was chosen.

    python benchmarks/lottery_tickets.py --seeds 3              # the README's run (~1.5 h on 2 cores)
    python benchmarks/lottery_tickets.py --quick                # 1 seed, 3 reported densities (~15 min)
    python benchmarks/lottery_tickets.py --curve                # dense quality against steps (validation)
    python benchmarks/lottery_tickets.py --smoke --out /tmp/lt.json   # seconds: the test suite's run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import Benchmark, Unit, main, paired, sample, seeds, spread
from reports import lottery_tickets as view
from reports.lottery_tickets import CONTROLS, variants

from lotteryir.engine import evaluate
from lotteryir.pruning import RoundContext
from lotteryir.runs import build_run

TARGET_DENSE_GAP = 0.1  # dB: the ticket at 0.107 may trail dense by at most this
TARGET_CONTROL_GAP = 0.5  # dB: the ticket over each control at density <= 0.33
CONTROL_DENSITY = 0.33


def reported_rounds(rounds: int, every: int) -> list[int]:
    """The rounds whose density is reported: 0, every N-th, and the last."""
    return sorted({0, rounds, *range(every, rounds + 1, every)})


def score(model: Any, test_sets: Any, device: str) -> dict[str, Any]:
    sets = evaluate(model, test_sets, device=device).sets
    out = {k: {label: getattr(s, k) for label, s in sets.items()} for k in ("psnr", "ssim", "input_psnr", "input_ssim")}
    return {**out, **{f"mean_{k}": statistics.fmean(out[k].values()) for k in ("psnr", "ssim")}}


def run_seed(a: argparse.Namespace, seed: int) -> dict[str, Any]:
    """A unit: every variant of one seed, built as `lotteryir prune` builds a run; round -> its variants."""
    report, rows = set(reported_rounds(a.rounds, a.report_every)), {}

    def closure(variant: str) -> Any:
        def train(model: Any, ctx: RoundContext) -> dict[str, Any]:
            name = ctx.extras.get("control") or ("dense" if ctx.round == 0 and variant == "imp_init" else variant)
            start = time.perf_counter()
            metrics = trainer(model, ctx)
            result = {"train_loss": metrics["loss"], "train_seconds": time.perf_counter() - start}
            if ctx.round in report and not (name == "imp_step" and ctx.round == 0):  # its round 0 is dense again
                trained = time.perf_counter()
                result.update(score(model, test_sets, a.device), eval_seconds=time.perf_counter() - trained)
                rows.setdefault(ctx.round, {"round": ctx.round, "density": ctx.density, "variants": {}})
                rows[ctx.round]["variants"][name] = result
            said = f"mean PSNR {result['mean_psnr']:6.2f} dB" if "mean_psnr" in result else "(not evaluated)"
            line = f"round {ctx.round:2d} density {ctx.density:.3f} {name:<13} {said}  loss {result['train_loss']:.4f}"
            print(f"[seed {seed}] {line}", flush=True)
            return {"loss": metrics["loss"]}

        return train

    def config(rewind: str) -> Any:
        data = sample.data_options(a)
        return sample.config(a, seed, data_paths=data, rounds=a.rounds, rate=a.rate, rewind=rewind).resolved()

    built = build_run(config("init"), closure("imp_init"))
    trainer, pruner, test_sets = built.trainer, built.pruner, built.test_sets
    # the same seed, so the same initialization and round-0 training; it snapshots step K on the way
    late = build_run(config(f"step:{a.late_rewind}"), closure("imp_step")).pruner if a.late_rewind else None
    for r in range(a.rounds + 1):
        pruner.run_round()
        if late is not None:
            late.run_round()
        for i, kind in enumerate(CONTROLS if r >= 1 and r in report else ()):
            control = pruner.make_control(kind, seed=seed * 1009 + 31 * r + i)
            ctx = RoundContext(round=r, density=pruner.mask.density, seed=seed, extras={"control": kind})
            closure(kind)(control, ctx)
    return {"seed": seed, "rounds": {str(r): rows[r] for r in sorted(rows)}}


def aggregate(runs: list[dict[str, Any]], variants: list[str]) -> dict[str, Any]:
    """Means and spreads per round and variant; paired differences with 95% intervals."""
    first, rounds = runs[0]["rounds"], sorted({int(r) for run in runs for r in run["rounds"]})
    inputs = first["0"]["variants"]["dense"]
    labels = list(inputs["psnr"])
    means = {f"mean_{k}": statistics.fmean(inputs[f"input_{k}"].values()) for k in ("psnr", "ssim")}
    summary: dict[str, Any] = {"input": {"psnr": inputs["input_psnr"], "ssim": inputs["input_ssim"], **means}}
    summary["rounds"] = []
    for r in map(str, rounds):
        row: dict[str, Any] = {"round": int(r), "density": first[r]["density"], "variants": {}, "paired": {}}
        for v in ["dense"] if r == "0" else variants:
            if res := [run["rounds"][r]["variants"][v] for run in runs if v in run["rounds"][r]["variants"]]:
                row["variants"][v] = {m: spread([x[m] for x in res]) for m in ("mean_psnr", "mean_ssim")}
                row["variants"][v]["psnr"] = {l: spread([x["psnr"][l] for x in res]) for l in labels}
        if r != "0" and "imp_init" in row["variants"]:
            ticket = [run["rounds"][r]["variants"]["imp_init"] for run in runs]
            others = [c for c in (*CONTROLS, "imp_step") if c in row["variants"]]
            against = {c: [run["rounds"][r]["variants"][c] for run in runs] for c in others}
            against["dense"] = [run["rounds"]["0"]["variants"]["dense"] for run in runs]
            for name, rs in against.items():
                sets = {l: paired([t["psnr"][l] for t in ticket], [o["psnr"][l] for o in rs]) for l in labels}
                mean = paired([t["mean_psnr"] for t in ticket], [o["mean_psnr"] for o in rs])
                row["paired"][f"imp_init - {name}"] = {"mean": mean, "sets": sets}
        summary["rounds"].append(row)
    return summary


def verdict(summary: dict[str, Any], labels: list[str], target_density: float) -> dict[str, Any]:
    """The ticket within 0.1 dB of dense at the last density; >= 0.5 dB above each control at <= 0.33."""
    rows = summary["rounds"]
    last = next((r for r in rows if abs(r["density"] - target_density) < 5e-3), None)
    gap = f"within {TARGET_DENSE_GAP} dB of dense or better"
    t1: dict[str, Any] = {"target": f"imp_init at density {target_density:.3f} {gap}", "status": "not measured"}
    if last is not None:
        d = last["paired"]["imp_init - dense"]["mean"]
        t1.update(status="pass" if d["mean"] >= -TARGET_DENSE_GAP else "fail", difference=d)
    t2: dict[str, Any] = {
        "target": f"imp_init >= {TARGET_CONTROL_GAP} dB above each control at every reported "
        f"density <= {CONTROL_DENSITY}, 95% interval above 0"
    }
    low, checks = [row for row in rows if row["round"] > 0 and row["density"] <= CONTROL_DENSITY], []
    for row, c in ((row, c) for row in low for c in CONTROLS):
        p = row["paired"][f"imp_init - {c}"]
        ok = p["mean"]["mean"] >= TARGET_CONTROL_GAP and (p["mean"]["n"] < 2 or p["mean"]["low"] > 0)
        holds = [l for l in labels if p["sets"][l]["low"] > 0]
        check = {"density": row["density"], "control": c, "difference": p["mean"], "pass": ok}
        checks.append({**check, "sets_ci_above_0": holds})
    if checks:
        failed = sum(not c["pass"] for c in checks)
        t2.update(status="fail" if failed else "pass", checks=checks, failed=failed)
    else:
        t2["status"] = "not measured"

    def beats(row: dict[str, Any], l: str) -> bool:
        return all(row["paired"][f"imp_init - {c}"]["sets"][l]["low"] > 0 for c in CONTROLS)

    both = {l: [row["density"] for row in low if beats(row, l)] for l in labels}
    return {"ticket_vs_dense": t1, "ticket_vs_controls": t2, "sets_where_ticket_beats_both_controls": both}


class LotteryTickets(Benchmark):
    name, threads, view = "lottery_tickets", "auto", view

    def options(self, p: argparse.ArgumentParser) -> None:
        sample.add_args(p)
        p.add_argument("--rounds", type=int, default=10, help="pruning rounds (default 10: density 0.107)")
        p.add_argument("--rate", type=float, default=0.2)
        p.add_argument("--report-every", type=int, default=2, help="score IMP and train the controls every N rounds")
        p.add_argument("--late-rewind", type=int, default=None, metavar="K", help="also run IMP rewinding to step K")
        p.add_argument("--curve", action="store_true", help="dense quality against steps on the validation split")

    def presets(self, a: argparse.Namespace, p: argparse.ArgumentParser) -> None:
        if a.quick:
            a.seeds, a.rounds, a.report_every, a.test_degradations = 1, 6, 3, 1
        if a.smoke:
            n, a.rounds, a.report_every = a.seeds, 2, 1
            sample.smoke(a)
            a.seeds = n  # the smoke test runs two seeds
        if a.late_rewind is not None and not 1 <= a.late_rewind < a.steps:
            p.error(f"--late-rewind must be in [1, --steps), got {a.late_rewind}")

    def probe(self, a: argparse.Namespace) -> Any:
        data = sample.data_options(a)
        built = build_run(sample.config(a, a.seed0, data_paths=data, rounds=a.rounds, rate=a.rate).resolved())
        a.threads, self.n_test = built.threads.threads, sample.n_test(built)  # every seed trains with this count
        self.params = sum(p.numel() for p in built.model.parameters())
        return built

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        at, rec = reported_rounds(a.rounds, a.report_every), sample.record(a, self.n_test)
        head = {"model": rec["model"], "params": self.params}
        head |= {k: rec[k] for k in ("steps", "lr", "loss", "init", "patch", "batch")}
        mid = {"rounds": a.rounds, "rate": a.rate, "reported_rounds": at}
        mid |= {"densities": [round((1 - a.rate) ** r, 4) for r in at], "seeds": seeds(a), "late_rewind": a.late_rewind}
        # every setting of sample.record: cost_quality and stability reuse this file only when each is equal
        tail = ("test_images_per_set", "test_degradations", "identity_pairs", "web_degradation", "threads", "device")
        return {**head, **mid, **{k: rec[k] for k in tail}}

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        """One unit a seed: its IMP line(s) through every round, the controls at the reported rounds."""
        done, at = {run["seed"] for run in report.get("runs", [])}, reported_rounds(a.rounds, a.report_every)
        lines = 2 if a.late_rewind is not None else 1  # IMP lines, each training every level
        trainings = lines * (1 + a.rounds) + len(CONTROLS) * (len(at) - 1)
        evals = 1 + (lines + len(CONTROLS)) * (len(at) - 1)

        def store(got: dict[str, Any]) -> None:
            report["runs"] = sorted([*report.get("runs", []), got], key=lambda run: run["seed"])

        calls = {str(s): (run_seed, a, s) for s in seeds(a) if s not in done}
        return [Unit(("runs", s), "seed", trainings * a.steps, evals, call=c, store=store) for s, c in calls.items()]

    def describe(self, a: argparse.Namespace, probe: Any) -> str:
        densities = [round((1 - a.rate) ** r, 4) for r in reported_rounds(a.rounds, a.report_every)]
        return (
            f"lottery tickets: mirl/{a.size} ({self.params:,} params), sample recipe, {len(probe.test_sets)} test sets "
            f"x {self.n_test} images; {a.steps} steps per training at lr {a.lr:g}; {a.rounds} rounds of {a.rate:.0%} "
            f"global; reported densities {densities}; seeds {seeds(a)}; {a.threads} thread(s) ({probe.threads.reason})"
        )

    def say(self, unit: Unit, got: dict[str, Any]) -> str:
        last = got["rounds"][max(got["rounds"], key=int)]["variants"]["imp_init"]
        return f"imp_init at the last density: mean PSNR {last['mean_psnr']:.2f} dB"

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        if not report.get("runs"):
            return {"input": None, "rounds": []}
        summary = aggregate(report["runs"], variants(report["config"]))
        report["verdict"] = verdict(summary, list(summary["input"]["psnr"]), (1 - a.rate) ** a.rounds)
        return summary


def curve_unit(a: argparse.Namespace, steps: int) -> dict[str, Any]:
    """A unit of --curve: the dense network trained ``steps`` steps, scored on the sample's validation split."""
    data = {**sample.data_options(a), "split": "validation"}  # 3 degradations unless --smoke
    built = build_run(sample.config(a, a.seed0, data_paths=data, rounds=0, steps=steps).resolved())
    start = time.perf_counter()
    metrics = built.trainer(built.model, RoundContext(round=0, density=1.0))
    seconds = time.perf_counter() - start
    gains = {k.split("/")[0]: s.gain for k, s in evaluate(built.model, built.test_sets, device=a.device).sets.items()}
    losses = {"train_loss": metrics["loss"], "loss_last": metrics["loss_last"]}
    return {"steps": steps, **losses, "mean_gain": statistics.fmean(gains.values()), "gains": gains, "seconds": seconds}


class Curve(LotteryTickets):
    """--curve: where the dense network's quality flattens against its steps (how --steps was chosen)."""

    name, seeds = "lottery_tickets_curve", 1  # it trains --seed0 alone, so that is what it records

    def presets(self, a: argparse.Namespace, p: argparse.ArgumentParser) -> None:
        super().presets(a, p)
        if a.seeds != 1:
            p.error(f"--curve trains one seed (--seed0 picks it), got --seeds {a.seeds}")

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        a.budgets = (2, 4) if a.smoke else (150, 300, 600, 1200, 2400)
        rec = sample.record(a, self.n_test)  # the training it measures: a file of another one is not resumed
        kept = ("model", "lr", "loss", "init", "patch", "batch", "identity_pairs", "web_degradation", "threads")
        return {"split": "validation", **{k: rec[k] for k in kept}, "budgets": list(a.budgets)}

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        def store(got: dict[str, Any]) -> None:
            report["rows"] = sorted([*report.get("rows", []), got], key=lambda row: row["steps"])

        done = {row["steps"] for row in report.get("rows", [])}
        calls = {s: (curve_unit, a, s) for s in a.budgets if s not in done}
        return [Unit(("rows", str(s)), "budget", s, 1, call=c, store=store) for s, c in calls.items()]

    def say(self, unit: Unit, got: dict[str, Any]) -> str:
        return f"mean gain {got['mean_gain']:+.2f} dB over the validation inputs, train loss {got['train_loss']:.4f}"

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        return {"best_steps": max(report.get("rows", []), key=lambda r: r["mean_gain"], default={}).get("steps")}

    def markdown(self, report: dict[str, Any], a: argparse.Namespace) -> str:
        return view.curve_markdown(report, a)

    def figure(self, report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
        view.curve_figure(report, a, path)


if __name__ == "__main__":
    sys.exit(main(Curve() if "--curve" in sys.argv[1:] else LotteryTickets()))
