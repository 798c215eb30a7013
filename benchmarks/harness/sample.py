"""The training the benchmarks share: mirl on the sample recipe, as `lotteryir prune` trains it.

lottery_tickets, cost_quality, stability and task_tickets train one configuration (identity init,
L1, 600 steps at lr 4e-3, patch 48, batch 8, global scope, rewind to init); its flags, its run
configuration, what a results file records of it, a round's scores, and the check that another
benchmark's results trained exactly it (so that they may be reused) are defined here once.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch

from lotteryir.data import get_recipe
from lotteryir.engine import evaluate
from lotteryir.pruning import Mask
from lotteryir.runs import PruningRun, RunConfig, RunLayout, run_cost
from lotteryir.runs.config import SAMPLE_INIT, SAMPLE_LOSS, SAMPLE_LR, SAMPLE_PATCH

from .provenance import ROOT, relative

LOTTERY_TICKETS = ROOT / "benchmarks" / "results" / "lottery_tickets.json"
DENSE_TOLERANCE_DB = 0.01  # the same dense training twice on one CPU thread scores the same
SMOKE_SIDE = 48  # --smoke scores test photographs scaled to this long side: scoring is most of a smoke run
DENOISE = ("denoise_15", "denoise_25", "denoise_50")


def add_args(p: argparse.ArgumentParser) -> None:
    """--size, --steps, --lr, --patch, --batch, --test-degradations (the shared defaults)."""
    p.add_argument("--size", default="tiny", help="mirl size (default tiny)")
    p.add_argument("--steps", type=int, default=600, help="optimizer steps per training (default 600)")
    p.add_argument("--lr", type=float, default=SAMPLE_LR)
    p.add_argument("--patch", type=int, default=SAMPLE_PATCH)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--test-degradations", type=int, default=3, help="seeded degradations per test photograph")


def smoke(a: argparse.Namespace, steps: int = 3) -> None:
    """The smoke preset of the training: one seed, ``steps`` steps, patch 32, batch 4, one degradation."""
    a.seeds, a.steps, a.patch, a.batch, a.test_degradations = 1, steps, 32, 4, 1


def data_options(a: argparse.Namespace) -> dict[str, Any]:
    """The sample recipe's options: the test degradations; --smoke: two small photographs a set."""
    opts: dict[str, Any] = {"degradations": a.test_degradations}
    if a.smoke:
        opts.update(max_images=2, test_max_side=SMOKE_SIDE)
    return opts


def config(a: argparse.Namespace, seed: int, **settings: Any) -> RunConfig:
    """The run configuration of one seed; ``settings`` (rate, rounds, method, data_paths, ...) add to it or
    replace its own."""
    shared = {"model": "mirl", "size": a.size, "recipe": "sample", "scope": "global", "rewind": "init"}
    shared.update(steps=a.steps, batch_size=a.batch, patch_size=a.patch, lr=a.lr, loss=SAMPLE_LOSS, init=SAMPLE_INIT)
    return RunConfig(**{**shared, "seed": seed, "device": a.device, "threads": a.threads, **settings})


def record(a: argparse.Namespace, n_test: int) -> dict[str, Any]:
    """What defines the shared training and its scores in a results file (resumes and reuses compare it)."""
    return {
        "model": f"mirl/{a.size}",
        "steps": a.steps,
        "lr": a.lr,
        "loss": SAMPLE_LOSS,
        "init": SAMPLE_INIT,
        "patch": a.patch,
        "batch": a.batch,
        "rate": a.rate,
        "test_degradations": a.test_degradations,
        "test_images_per_set": n_test,
        "identity_pairs": identity_pairs(),
        "web_degradation": web_degradation(),
        "threads": a.threads,
        "device": a.device,
    }


def identity_pairs() -> dict[str, int]:
    """The identity pairs per photograph in the recipe's default mix: several tasks, and one task alone.

    Recorded because they decide what a single-task training learns (they once pinned it at its input),
    so that a results file made under other pairs is never resumed or reused.
    """
    recipe = get_recipe("sample")
    return {"several tasks": recipe.identity_for(list(recipe.tasks)), "one task": recipe.identity_for(["derain"])}


def web_degradation() -> dict[str, Any]:
    """The sample recipe's web degradation, by name and settings: it decides what the web sets score."""
    recipe = get_recipe("sample")
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.degrade_options("web").items()}
    return {"name": recipe.web, **settings}  # lists, as the results file's JSON holds them


def n_test(probe: Any) -> int:
    """Images per test set of a built run."""
    return len(next(iter(probe.test_sets.values())))


def scores(entry: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A history entry's per-set ``keys`` (psnr, ssim, input_psnr ...) as {key: {set: value}}."""
    return {k: {label: v[k] for label, v in entry["eval"].items()} for k in keys}


def round_cell(entry: dict[str, Any], history: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """One round of a run: its scores per set, the cost of every round up to it, the tensors it emptied."""
    out = {
        "round": entry["round"],
        "density": entry["density"],
        **scores(entry, "psnr", "ssim", "input_psnr"),
        "mean_psnr": entry["mean_psnr"],
        "mean_ssim": entry["mean_ssim"],
        "cost": run_cost([h for h in history if h["round"] <= entry["round"]]),
        "source": relative(run_dir),
    }
    if "method" in entry:
        out["method"] = entry["method"]
    return {**out, **empty_tensors(run_dir, entry)}


def empty_tensors(run_dir: Any, entry: dict[str, Any]) -> dict[str, Any]:
    """The tensors a round's mask pruned to nothing (each one cuts the network), and how many it has.

    Tensors the forward never uses (snip/synflow list them as unscored in the round's method facts)
    cut nothing and are not counted. Empty when the round saved no mask (the dense round).
    """
    mask_file = RunLayout(run_dir).mask(entry["round"])
    if not mask_file.is_file():
        return {}
    mask = Mask.load(mask_file)
    unused = set(entry.get("method", {}).get("unscored", []))
    return {"empty_tensors": [k for k in mask if not bool(mask[k].any()) and k not in unused], "tensors": len(mask)}


def denoise_mean(psnr: dict[str, float]) -> float:
    """The mean over the denoising sets (they move by tenths where haze swings by dB)."""
    return statistics.fmean(v for k, v in psnr.items() if k.split("/")[0] in DENOISE)


def input_psnr(test_sets: Any, device: str) -> dict[str, float]:
    """The degraded inputs' PSNR per set: the test set's fingerprint (no network involved)."""
    result = evaluate(torch.nn.Identity(), test_sets, device=device)
    return {k: math.nan if s.input_psnr is None else s.input_psnr for k, s in result.sets.items()}


def reuse_checks(
    a: argparse.Namespace, source: dict[str, Any], inputs: dict[str, float], n_test: int, rounds: list[int]
) -> list[dict[str, Any]]:
    """Whether lottery_tickets' results trained what this benchmark trains, setting by setting:
    {setting, lottery_tickets' value, this benchmark's, equal}; the degraded inputs' PSNR per set too."""
    c = source.get("config", {})
    checks = [(k, c.get(k), v, c.get(k) == v) for k, v in record(a, n_test).items()]
    seeds = list(range(a.seed0, a.seed0 + a.seeds))
    checks.append(("seeds", c.get("seeds"), seeds, set(seeds) <= set(c.get("seeds") or [])))
    reported = c.get("reported_rounds") or []
    checks.append(("reported_rounds", reported, [0, *rounds], {0, *rounds} <= set(reported)))
    theirs = None
    try:
        theirs = source["runs"][0]["rounds"]["0"]["variants"]["dense"]["input_psnr"]
    except (KeyError, IndexError, TypeError):
        pass
    same = theirs is not None and set(theirs) == set(inputs) and all(abs(theirs[k] - inputs[k]) < 1e-9 for k in inputs)
    checks.append(("degraded inputs' PSNR per set", theirs, inputs, same))
    return [{"setting": k, "lottery_tickets": x, "here": y, "equal": ok} for k, x, y, ok in checks]


def reuse(
    a: argparse.Namespace,
    report: dict[str, Any],
    fingerprint: tuple[dict[str, float], int, list[int]],
    lead: tuple[str, str],
    extra: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any] | None:
    """lottery_tickets' results (``--reuse``) when they trained exactly this, else None.

    ``fingerprint`` is (the degraded inputs' PSNR per set, test images per set, the rounds needed);
    ``extra`` checks add to ``reuse_checks``. Printed setting by setting and recorded in
    ``report["reuse"]``, whose summary begins with ``lead[0]`` when reused and ``lead[1]`` when not.
    """
    path = Path(a.reuse)
    if a.reuse == "none" or not path.is_file():
        why = "--reuse none" if a.reuse == "none" else f"--reuse {relative(path)}: no such file"
        report["reuse"] = {"reused": False, "summary": f"{lead[1]} ({why})"}
        return None
    source = json.loads(path.read_text())
    checks = [*reuse_checks(a, source, *fingerprint), *extra]
    ok = all(c["equal"] for c in checks)
    print(f"from {relative(path)}? {'yes' if ok else 'no'}; setting by setting:")
    for c in checks:
        mine, theirs = ("(per set)" if isinstance(c[k], dict) else c[k] for k in ("here", "lottery_tickets"))
        print(f"  {'same' if c['equal'] else 'DIFFERENT'}: {c['setting']} = {theirs} there, {mine} here")
    differ = ", ".join(c["setting"] for c in checks if not c["equal"])
    said = (
        f"{lead[0]} {path.name} (every setting equal)" if ok else f"{lead[1]} ({path.name}'s settings differ: {differ})"
    )
    report["reuse"] = {"source": relative(path), "reused": ok, "checks": checks, "summary": said}
    return source if ok else None


def train_run(directory: str, config: RunConfig) -> dict[str, Any]:
    """A unit: the ``PruningRun`` in ``directory`` trained (or resumed) to its end; its history."""
    return {"history": PruningRun(directory, config).run()}


def rounds_taken(directory: Path, rounds: int) -> int:
    """The rounds to open a round-based run with: ``rounds``, or more where another sitting took the run
    further (opening it with fewer would be refused as another configuration; the rounds it holds are read)."""
    config = RunLayout(directory).config
    try:
        return max(rounds, int(json.loads(config.read_text()).get("rounds") or 0)) if config.is_file() else rounds
    except (ValueError, TypeError, AttributeError):  # not a run's config: let PruningRun name the problem
        return rounds


def gap(mine: dict[str, float] | None, theirs: dict[str, float] | None) -> float:
    """The largest |dPSNR| per set between two networks' scores (inf where the sets differ or one is missing)."""
    if not mine or not theirs or set(mine) != set(theirs):
        return math.inf
    return max(abs(mine[k] - theirs[k]) for k in mine)


def drop_reused(results: dict[str, Any], variants: tuple[str, ...]) -> int:
    """Remove the cells an earlier sitting took from lottery_tickets (not this benchmark's training); how many."""
    dropped = 0
    for per_seed in results.values():
        for variant in variants:
            cells = per_seed.get(variant, {})
            for key in [k for k, c in cells.items() if "lottery_tickets" in str(c.get("source", ""))]:
                del cells[key]
                dropped += 1
            if variant in per_seed and not cells:
                del per_seed[variant]
    return dropped


def reused_variant(source: dict[str, Any] | None, seeds: list[int], r: int, variant: str) -> dict[str, Any]:
    """One variant at round ``r`` per seed from lottery_tickets' records, with that seed's dense scores
    (``dense_psnr``: a reuse holds only while the dense round trained here scores the same, ``check_reused``)."""
    out = {}
    for run in (run for run in (source or {}).get("runs", []) if run["seed"] in seeds):
        x = run["rounds"][str(r)]["variants"][variant]
        dense = run["rounds"].get("0", {}).get("variants", {}).get("dense", {}).get("psnr")
        out[str(run["seed"])] = {**{k: x[k] for k in ("psnr", "mean_psnr", "input_psnr")}, "dense_psnr": dense}
    return out


def check_reused(report: dict[str, Any], key: str, dense: dict[str, dict[str, float] | None]) -> None:
    """Drop ``report[key]`` (cells reused per seed) where lottery_tickets' dense round differs from the dense
    round trained here (``dense``: seed -> its scores per set) by more than DENSE_TOLERANCE_DB on a set:
    equal settings are not enough, the code may have changed since."""
    diffs = [gap(dense[s], cell.get("dense_psnr")) for s, cell in (report.get(key) or {}).items() if dense.get(s)]
    if (worst := max(diffs, default=0.0)) > DENSE_TOLERANCE_DB:
        source = Path(report.get("reuse", {}).get("source", "lottery_tickets.json")).name
        why = f"{source}'s dense round differs from the one trained here by up to {worst:.2f} dB on a set"
        report[key] = {}
        report["reuse"] = {**report.get("reuse", {}), "reused": False, "dense_check": worst}
        report["reuse"]["summary"] = f"not available ({why}: another training)"
