"""Are the tickets real? IMP tickets against random reinit and random pruning, all-in-one, on CPU.

The built-in sample recipe (denoise at sigma 15/25/50, derain, dehaze, web/JPEG), a small
MIR-L (PromptIR) network, 10 rounds of 20% global magnitude pruning (density down to
0.8^10 = 0.107) and the same number of training steps in every round. At each round's
density four networks are trained from their starting point and evaluated on the
sample test images:

  imp_init       the IMP ticket, survivors rewound to the initialization (the MIR-L paper)
  imp_step       the IMP ticket of a second pruner that rewinds to step K of dense training
  random_reinit  imp_init's mask on a fresh random initialization
  random_prune   a random mask with imp_init's per-layer densities, weights from the init

The dense network (round 0) is trained once and shared by both pruners: they start from
the same initialization and train with the same seed, so their round 0 would be identical.

Writes JSON with every number, a table (stdout and .md) and the lottery-ticket figure
(.png, PSNR against the remaining fraction on a log axis, one line per variant). Ends
with a verdict on the two targets of issue 7, computed from the numbers:

  1. at density 0.107, the best ticket's mean PSNR within 0.1 dB of dense;
  2. at every density <= 0.33, each ticket >= 0.5 dB above both controls.

Default configuration, sized by timing on 2 CPU cores (about 0.10 s per step and 4.5 s per
evaluation of all 30 test images): mirl tiny (260k parameters), 48 px crops, batch 8, 500
steps per training, 41 trainings (dense once, then 4 per round): about 38-45 min. The
learning rate (2e-3, warm-up then cosine) was the lowest dense *training* loss after 500
steps among 2e-4, 5e-4, 1e-3 and 2e-3; nothing was tuned on the test images. The script
measures the step time first and prints its own estimate.

    python benchmarks/lottery_tickets.py                      # ~40 min on 2 idle CPU cores, 1 seed
    python benchmarks/lottery_tickets.py --seeds 3            # 3x as long; mean and spread
    python benchmarks/lottery_tickets.py --quick --out /tmp/lt.json   # smoke run, seconds
    python benchmarks/lottery_tickets.py --size small --patch 64 --steps 4000 --device cuda
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from lotteryir.data import get_recipe
from lotteryir.engine import RestorationTrainer, TrainConfig, evaluate
from lotteryir.models import build_model
from lotteryir.pruning import IterativeMagnitudePruner, RoundContext

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "lottery_tickets.json"
VARIANTS = ("dense", "imp_init", "imp_step", "random_reinit", "random_prune")
TICKETS = ("imp_init", "imp_step")
CONTROLS = ("random_reinit", "random_prune")
TARGET_DENSE_GAP = 0.1  # dB: best ticket at the lowest density vs dense
TARGET_CONTROL_GAP = 0.5  # dB: each ticket vs each control at density <= 0.33
CONTROL_DENSITY = 0.33
TARGET_DENSITY = 0.8**10  # 0.107: 10 rounds at 20%


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="tiny", help="mirl size (tiny, small, full); default tiny")
    p.add_argument("--patch", type=int, default=48, help="training crop size (default 48)")
    p.add_argument("--steps", type=int, default=500, help="optimizer steps per training, every round (default 500)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, warm-up then cosine (default 2e-3)")
    p.add_argument("--rounds", type=int, default=10, help="pruning rounds (default 10: density 0.107)")
    p.add_argument("--rate", type=float, default=0.2, help="fraction of remaining weights pruned per round (default 0.2)")
    p.add_argument("--rewind-step", type=int, default=None, help="K for imp_step (default: 5%% of --steps)")
    p.add_argument("--seeds", type=int, default=1, help="repeat with seeds seed0..seed0+N-1; report mean and spread")
    p.add_argument("--seed0", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--test-images", type=int, default=None, help="test images per task (default: all 5)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON path; the .md table and .png figure go beside it")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds, 3 steps, patch 32, 1 test image")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.patch, args.test_images, args.batch = 2, 3, 32, 1, 4
    if args.rewind_step is None:
        args.rewind_step = max(1, round(0.05 * args.steps))
    if not 1 <= args.rewind_step < args.steps:
        p.error(f"--rewind-step must be in [1, --steps), got {args.rewind_step}")
    return args


# -- one seed ------------------------------------------------------------------------------
class TrainAndEvaluate:
    """The closure both pruners share: train one round with the engine, then evaluate."""

    def __init__(self, trainer: RestorationTrainer, test_sets: dict, device: str, label: str, on_result) -> None:
        self.trainer, self.test_sets, self.device = trainer, test_sets, device
        self.label, self.on_result = label, on_result

    def __call__(self, model: torch.nn.Module, ctx) -> dict[str, Any]:
        variant = ctx.extras.get("control") or (self.label if ctx.round > 0 else "dense")
        start = time.perf_counter()
        metrics = self.trainer(model, ctx)
        trained = time.perf_counter()
        summary = evaluate(model, self.test_sets, device=self.device).summary()
        result = {
            "psnr": {k: v["psnr"] for k, v in summary.items()},
            "ssim": {k: v["ssim"] for k, v in summary.items()},
            "train_loss": metrics["loss"],
            "train_seconds": trained - start,
            "eval_seconds": time.perf_counter() - trained,
        }
        result["mean_psnr"] = statistics.fmean(result["psnr"].values())
        result["mean_ssim"] = statistics.fmean(result["ssim"].values())
        self.on_result(ctx.round, ctx.density, variant, result)
        return result


def run_seed(seed: int, args: argparse.Namespace, train_set, test_sets, on_result) -> list[dict[str, Any]]:
    """Both pruners over all rounds for one seed; returns one row per round."""
    torch.manual_seed(seed)
    model_step = build_model("mirl", args.size)
    model_init = copy.deepcopy(model_step)  # the same initialization for both lines
    config = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, device=args.device, checkpoint_every=None)
    trainer = RestorationTrainer(train_set, config)
    rows: dict[int, dict[str, Any]] = {}

    def record(r: int, density: float, variant: str, result: dict[str, Any]) -> None:
        row = rows.setdefault(r, {"round": r, "density": density, "variants": {}})
        row["variants"][variant] = result
        on_result(seed, r, density, variant, result)

    step_pruner = IterativeMagnitudePruner(
        model_step, TrainAndEvaluate(trainer, test_sets, args.device, "imp_step", record),
        rate=args.rate, rounds=args.rounds, scope="global", rewind=f"step:{args.rewind_step}", seed=seed)
    init_pruner = IterativeMagnitudePruner(
        model_init, TrainAndEvaluate(trainer, test_sets, args.device, "imp_init", record),
        rate=args.rate, rounds=args.rounds, scope="global", rewind="init", controls=CONTROLS, seed=seed,
        model_factory=lambda: build_model("mirl", args.size).to(args.device))  # random_reinit re-draws it all

    step_pruner.run_round()  # round 0: trains and evaluates the dense network

    def replay_dense(model: torch.nn.Module, ctx) -> dict[str, Any]:
        # Same init, same seed, same data order: this round 0 would repeat the one above.
        model.load_state_dict(step_pruner.model.state_dict())
        # One backward pass lets the pruner see which tensors get gradients (PromptIR builds
        # convolutions it never calls; they must leave the prunable set as in a trained round 0).
        model(torch.rand(1, 3, args.patch, args.patch, device=args.device)).mean().backward()
        model.zero_grad(set_to_none=True)
        return rows[0]["variants"]["dense"]

    init_pruner.run_round(replay_dense)
    assert init_pruner.active == step_pruner.active, "the two pruners disagree on the prunable set"
    while not init_pruner.finished:
        step_pruner.run_round()
        init_pruner.run_round()
    return [rows[r] for r in sorted(rows)]


# -- timing --------------------------------------------------------------------------------
def measure_step(args: argparse.Namespace, train_set, reps: int = 3) -> float:
    """Seconds per training step as the benchmark runs it (masks, data, engine): min over reps of 8-step rounds."""
    torch.manual_seed(0)
    model = build_model("mirl", args.size)
    IterativeMagnitudePruner(model, rounds=1)  # masks attached: the cost the benchmark pays
    n = 2 if args.quick else 8

    def timed(steps: int) -> float:
        config = TrainConfig(steps=steps, batch_size=args.batch, lr=args.lr, device=args.device, checkpoint_every=None)
        start = time.perf_counter()
        RestorationTrainer(train_set, config)(model, RoundContext(round=0, density=1.0))
        return time.perf_counter() - start

    timed(1)  # warm-up: allocator, first data items
    return min(timed(n) / n for _ in range(reps))


def measure_eval(args: argparse.Namespace, test_sets) -> float:
    torch.manual_seed(0)
    start = time.perf_counter()
    evaluate(build_model("mirl", args.size), test_sets, device=args.device)
    return time.perf_counter() - start


# -- aggregation, table, figure, verdict ---------------------------------------------------
def aggregate(runs: list[dict[str, Any]], tasks: list[str]) -> list[dict[str, Any]]:
    """Per round and variant: means over seeds of every number, plus the spread of the mean PSNR."""
    out = []
    for r, first in enumerate(runs[0]["rounds"]):
        row = {"round": r, "density": first["density"], "variants": {}}
        for variant in first["variants"]:
            results = [run["rounds"][r]["variants"][variant] for run in runs]
            means = [x["mean_psnr"] for x in results]
            row["variants"][variant] = {
                "psnr": {t: statistics.fmean(x["psnr"][t] for x in results) for t in tasks},
                "ssim": {t: statistics.fmean(x["ssim"][t] for x in results) for t in tasks},
                "mean_psnr": statistics.fmean(means),
                "mean_psnr_std": statistics.stdev(means) if len(means) > 1 else 0.0,
                "mean_psnr_min": min(means),
                "mean_psnr_max": max(means),
                "mean_ssim": statistics.fmean(x["mean_ssim"] for x in results),
            }
        out.append(row)
    return out


def verdict(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """Both targets of issue 7 from the (seed-averaged) numbers, with margins."""
    dense = summary[0]["variants"]["dense"]["mean_psnr"]
    last = next((row for row in summary[1:] if abs(row["density"] - TARGET_DENSITY) < 5e-3), None)
    t1: dict[str, Any] = {"target": f"best ticket at density {TARGET_DENSITY:.3f} within {TARGET_DENSE_GAP} dB of dense"}
    if last is None:
        run = ", ".join(f"{row['density']:.3f}" for row in summary)
        t1.update(status="not measured", reason=f"no round at density {TARGET_DENSITY:.3f} (densities run: {run})")
    else:
        best_name = max(TICKETS, key=lambda v: last["variants"][v]["mean_psnr"])
        best = last["variants"][best_name]["mean_psnr"]
        margin = best - (dense - TARGET_DENSE_GAP)
        t1.update(status="pass" if margin >= 0 else "fail", dense_psnr=dense, best_ticket=best_name,
                  best_ticket_psnr=best, gap_to_dense=best - dense, margin=margin)
    rows = [row for row in summary[1:] if row["density"] <= CONTROL_DENSITY]
    t2: dict[str, Any] = {"target": f"each ticket >= {TARGET_CONTROL_GAP} dB above both controls at density <= {CONTROL_DENSITY}"}
    if not rows:
        t2.update(status="not measured", reason=f"no round reached density <= {CONTROL_DENSITY}")
    else:
        checks = []
        for row in rows:
            v = row["variants"]
            for ticket in TICKETS:
                for control in CONTROLS:
                    gap = v[ticket]["mean_psnr"] - v[control]["mean_psnr"]
                    checks.append({"density": row["density"], "ticket": ticket, "control": control,
                                   "gap": gap, "margin": gap - TARGET_CONTROL_GAP})
        worst = min(checks, key=lambda c: c["margin"])
        failed = [c for c in checks if c["margin"] < 0]
        t2.update(status="fail" if failed else "pass", checks=len(checks), failed=len(failed), worst=worst)
    return {"dense_vs_best_ticket": t1, "tickets_vs_controls": t2}


def fmt_cell(value: dict[str, Any], metric: str, task: str | None, seeds: int) -> str:
    if task is None:
        text = f"{value['mean_psnr']:.2f}" if metric == "psnr" else f"{value['mean_ssim']:.4f}"
        if metric == "psnr" and seeds > 1:
            text += f" ± {value['mean_psnr_std']:.2f}"
        return text
    return f"{value[metric][task]:.2f}" if metric == "psnr" else f"{value[metric][task]:.4f}"


def table(summary: list[dict[str, Any]], tasks: list[str], seeds: int) -> str:
    """Markdown: mean PSNR/SSIM per variant, then per-task PSNR/SSIM per variant."""
    lines = ["### Mean over tasks: PSNR (dB) / SSIM" + (f", mean ± std over {seeds} seeds" if seeds > 1 else ""), ""]
    cols = [v for v in VARIANTS if v != "dense"]
    lines += ["| density | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    dense = summary[0]["variants"]["dense"]
    d_cell = f"{fmt_cell(dense, 'psnr', None, seeds)} / {dense['mean_ssim']:.4f}"
    lines.append("| 1.000 (dense) | " + " | ".join(d_cell for _ in cols) + " |")
    for row in summary[1:]:
        cells = [f"{fmt_cell(row['variants'][v], 'psnr', None, seeds)} / {row['variants'][v]['mean_ssim']:.4f}" for v in cols]
        lines.append(f"| {row['density']:.3f} | " + " | ".join(cells) + " |")
    short = [t.split("/")[0] for t in tasks]
    for variant in cols:
        lines += ["", f"### {variant}: PSNR (dB) / SSIM per task", ""]
        lines += ["| density | " + " | ".join(short) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
        for row in summary:
            v = row["variants"].get(variant) or row["variants"].get("dense")
            name = f"{row['density']:.3f}" + (" (dense)" if row["round"] == 0 else "")
            cells = [f"{v['psnr'][t]:.2f} / {v['ssim'][t]:.4f}" for t in tasks]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {v['mean_psnr']:.2f} / {v['mean_ssim']:.4f} |")
    return "\n".join(lines)


def figure(summary: list[dict[str, Any]], path: Path, title: str, seeds: int) -> None:
    """PSNR and SSIM against the remaining fraction (log x), one line per variant, dense as reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"imp_init": ("tab:blue", "o", "IMP ticket, rewind to init"),
              "imp_step": ("tab:green", "s", "IMP ticket, rewind to step K"),
              "random_reinit": ("tab:orange", "^", "random reinit (ticket mask)"),
              "random_prune": ("tab:red", "v", "random pruning (same layer densities)")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, metric in zip(axes, ("psnr", "ssim")):
        key = f"mean_{metric}"
        dense = summary[0]["variants"]["dense"][key]
        ax.axhline(dense, color="black", linestyle="--", linewidth=1, label="dense")
        rows = summary[1:]
        xs = [row["density"] for row in rows]
        for variant, (color, marker, label) in styles.items():
            ys = [row["variants"][variant][key] for row in rows]
            if metric == "psnr" and seeds > 1:
                err = [row["variants"][variant]["mean_psnr_std"] for row in rows]
                ax.errorbar(xs, ys, yerr=err, color=color, marker=marker, label=label, capsize=3)
            else:
                ax.plot(xs, ys, color=color, marker=marker, label=label)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ticks = ([1.0] + xs)[:: max(1, (len(xs) + 1) // 6)]
        ax.set_xticks(sorted(set(ticks + xs[-1:]), reverse=True))
        ax.set_xticklabels([f"{t:.3g}" for t in ax.get_xticks()])
        ax.minorticks_off()
        ax.set_xlabel("remaining fraction of prunable weights (log)")
        ax.set_ylabel("mean PSNR over tasks (dB)" if metric == "psnr" else "mean SSIM over tasks")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def verdict_text(v: dict[str, Any]) -> str:
    t1, t2 = v["dense_vs_best_ticket"], v["tickets_vs_controls"]
    lines = ["### Verdict", ""]
    if t1["status"] == "not measured":
        lines.append(f"- target 1 ({t1['target']}): not measured ({t1['reason']})")
    else:
        lines.append(f"- target 1 ({t1['target']}): **{t1['status'].upper()}**: {t1['best_ticket']} "
                     f"{t1['best_ticket_psnr']:.2f} dB vs dense {t1['dense_psnr']:.2f} dB "
                     f"(gap {t1['gap_to_dense']:+.2f} dB, margin {t1['margin']:+.2f} dB)")
    if t2["status"] == "not measured":
        lines.append(f"- target 2 ({t2['target']}): not measured ({t2['reason']})")
    else:
        w = t2["worst"]
        lines.append(f"- target 2 ({t2['target']}): **{t2['status'].upper()}**: {t2['failed']} of {t2['checks']} "
                     f"comparisons below target; worst: {w['ticket']} vs {w['control']} at density {w['density']:.3f}, "
                     f"gap {w['gap']:+.2f} dB (margin {w['margin']:+.2f} dB)")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seed0, args.seed0 + args.seeds))
    train_recipe = get_recipe("sample", max_images=2) if args.quick else get_recipe("sample")
    test_recipe = get_recipe("sample", max_images=args.test_images) if args.test_images else train_recipe
    train_set = train_recipe.train_dataset(patch_size=args.patch, seed=0)
    test_sets = test_recipe.test_sets()
    tasks = list(test_sets)
    n_test = len(next(iter(test_sets.values())))
    trainings = 1 + 4 * args.rounds  # dense once, then 2 tickets + 2 controls per round

    step_s = measure_step(args, train_set, reps=1 if args.quick else 3)
    eval_s = measure_eval(args, test_sets)
    estimate = len(seeds) * trainings * (args.steps * step_s + eval_s)
    params = sum(p.numel() for p in build_model("mirl", args.size).parameters())
    config = {
        "model": f"mirl/{args.size}", "params": params, "recipe": "sample", "tasks": tasks,
        "train_images": len(train_recipe.train_names), "test_images_per_task": n_test,
        "patch": args.patch, "batch": args.batch, "steps_per_training": args.steps, "lr": args.lr,
        "schedule": "linear warm-up (15/120 of the steps) then cosine, restarted every round; AdamW, L1",
        "rounds": args.rounds, "rate": args.rate, "scope": "global", "rewind_step": args.rewind_step,
        "densities": [round((1 - args.rate) ** r, 4) for r in range(args.rounds + 1)],
        "seeds": seeds, "device": args.device, "threads": args.threads, "quick": args.quick,
    }
    print(f"lottery tickets: mirl/{args.size} ({params:,} params), sample recipe, {len(tasks)} test sets x {n_test} image(s)")
    print(f"  patch {args.patch}, batch {args.batch}, {args.steps} steps per training at lr {args.lr:g}, "
          f"{args.rounds} rounds of {args.rate:.0%} global, imp_step rewinds to step {args.rewind_step}")
    print(f"  seeds {seeds}; device {args.device}, {args.threads} thread(s)")
    print(f"  measured: {step_s * 1000:.0f} ms per step, {eval_s:.1f} s per evaluation; "
          f"{trainings} trainings per seed -> estimated {estimate / 60:.1f} min", flush=True)

    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "benchmark": "lottery_tickets", "config": config,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
                        "cpu_count": os.cpu_count()},
        "timing": {"step_seconds": step_s, "eval_seconds": eval_s, "estimate_seconds": estimate},
        "variants": list(VARIANTS), "runs": runs,
    }

    def on_result(seed: int, r: int, density: float, variant: str, result: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - started
        print(f"[seed {seed}] round {r:2d} density {density:.3f} {variant:<13} mean PSNR {result['mean_psnr']:6.2f} dB "
              f"SSIM {result['mean_ssim']:.4f}  loss {result['train_loss']:.4f}  "
              f"({result['train_seconds']:.0f}+{result['eval_seconds']:.0f} s, {elapsed / 60:.1f} min elapsed)", flush=True)

    for seed in seeds:
        rounds = run_seed(seed, args, train_set, test_sets, on_result)
        runs.append({"seed": seed, "rounds": rounds})
        out.write_text(json.dumps(report, indent=2))  # partial results survive an interruption

    summary = aggregate(runs, tasks)
    report["summary"] = summary
    report["verdict"] = verdict(summary)
    report["timing"]["total_seconds"] = time.perf_counter() - started
    out.write_text(json.dumps(report, indent=2))

    header = (f"## Lottery tickets: mirl/{args.size}, sample recipe, patch {args.patch}, batch {args.batch}, "
              f"{args.steps} steps/training, {args.rounds} x {args.rate:.0%} global, seeds {seeds}\n")
    text = header + "\n" + table(summary, tasks, len(seeds)) + "\n\n" + verdict_text(report["verdict"]) + "\n"
    out.with_suffix(".md").write_text(text)
    figure(summary, out.with_suffix(".png"),
           f"mirl/{args.size} on the sample recipe: {args.steps} steps/round, patch {args.patch}, seeds {seeds}", len(seeds))
    print()
    print(text)
    print(f"total {report['timing']['total_seconds'] / 60:.1f} min (estimated {estimate / 60:.1f}); "
          f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
