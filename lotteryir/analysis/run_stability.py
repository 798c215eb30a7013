"""``lotteryir stability``: the instability analysis of a run's round, trained as the run trains.

The state at rewind step k is round 0 of the run replayed for k steps: the run's init (its seed),
its trainer, its data order (round 0, the run's seed) and its full round-0 schedule, stopped at step
k, so it equals the weights the run itself had at step k. Two copies then start there (with the
round's mask attached, or dense for round 0) and train as a round of the run trains (fresh AdamW,
warm-up and cosine), for the round's length minus k steps (or ``steps``); their data orders come
from two seeds that differ from the run's and from each other, everything else equal.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Subset

from .._files import atomic_write_text
from ..engine import RestorationTrainer, TrainingStopped
from ..models import refuse_from_file
from ..models.external import label as model_label
from ..pruning import Mask, RoundContext
from ..pruning.rewind import named_tensors
from ..runs import BuiltRun, RunError, RunLayout, build_run, is_run_dir, read_config
from ..runs.history import finished_round
from ..runs.layout import MASK_FILE
from ..runs.verify import round_file
from .barrier import DEFAULT_THRESHOLD, MIN_POINTS, smallest_stable
from .stability import PathResult, instability

STABILITY_VERSION = 1
# The copies' seeds are derived from the run's: never the run's own, never equal to each other.
SEED_OFFSETS = (1_000_003, 2_000_003)

Weights = dict[str, torch.Tensor]


@dataclass
class StabilityReport:
    """The instability analysis of one round of a run, one path per rewind step, as stored in the run."""

    round: int
    density: float
    threshold: float
    paths: dict[int, PathResult]
    steps: dict[int, int]  # rewind step -> optimizer steps each copy trained
    input_psnr: dict[str, float] = field(default_factory=dict)
    run_seed: int = 0

    @property
    def barriers(self) -> dict[int, float]:
        """Rewind step -> barrier of the mean PSNR, in dB."""
        return {k: p.mean_barrier for k, p in self.paths.items()}

    @property
    def stable_step(self) -> int | None:
        """The smallest rewind step whose mean barrier is at most the threshold, or None."""
        return smallest_stable(self.barriers, self.threshold)

    @property
    def mean_input_psnr(self) -> float:
        return statistics.fmean(self.input_psnr.values()) if self.input_psnr else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STABILITY_VERSION,
            "round": self.round,
            "density": self.density,
            "threshold": self.threshold,
            "stable_step": self.stable_step,
            "run_seed": self.run_seed,
            "input_psnr": self.input_psnr,
            "mean_input_psnr": self.mean_input_psnr,
            "rewind_steps": [{"k": k, "steps": self.steps[k], **self.paths[k].to_dict()} for k in sorted(self.paths)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StabilityReport:
        paths, steps = {}, {}
        for entry in data["rewind_steps"]:
            k = int(entry["k"])
            paths[k] = PathResult(
                alphas=[float(a) for a in entry["alphas"]],
                psnr={label: [float(v) for v in c] for label, c in entry["psnr"].items()},
                seeds=(int(entry["seeds"][0]), int(entry["seeds"][1])),
                train=list(entry.get("train", [])),
            )
            steps[k] = int(entry["steps"])
        return cls(
            round=int(data["round"]),
            density=float(data["density"]),
            threshold=float(data["threshold"]),
            paths=paths,
            steps=steps,
            input_psnr={k: float(v) for k, v in data.get("input_psnr", {}).items()},
            run_seed=int(data.get("run_seed", 0)),
        )


def run_stability(
    run_dir: str | os.PathLike,
    round: int | None = None,
    rewind_steps: Sequence[int] = (0,),
    *,
    steps: int | None = None,
    points: int = MIN_POINTS,
    threshold: float = DEFAULT_THRESHOLD,
    device: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    save: bool = True,
    test_images: int | None = None,
) -> StabilityReport:
    """Measure the instability of ``round`` of the run in ``run_dir`` at each of ``rewind_steps``.

    With ``save`` the report goes to ``RUN/analysis/stability.json`` (replacing an earlier one) and
    its figure to ``RUN/analysis/stability.png``. A network named by file or import path must be
    registered first (:func:`lotteryir.models.register_import_path`): a run's file is never imported.
    ``test_images``: score the path on that many images of each test set, evenly spaced over it
    (default: every image, as the run scores its rounds); 11 points on all of them cost 11 evaluations.
    """
    layout = RunLayout(run_dir)
    config = read_config(run_dir)
    refuse_from_file(config.model, str(layout.config))
    r = finished_round(run_dir, round)
    ks = _check_steps(rewind_steps)
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if not threshold >= 0:
        raise ValueError(f"--threshold is in dB and must be >= 0, got {threshold}")
    if test_images is not None and test_images < 1:
        raise ValueError(f"test_images must be at least 1, got {test_images}")
    built = build_run(config.on_device(device))
    if test_images is not None:
        built.test_sets = {label: spaced_subset(s, test_images) for label, s in built.test_sets.items()}
    total = built.trainer.plan()[1]
    too_late = [k for k in ks if k > total or (steps is None and k >= total)]
    if too_late:
        raise ValueError(
            f"--rewind-steps {too_late} are not before the end of round 0 ({total} optimizer steps): "
            + (
                f"use steps up to {total}"
                if steps is not None
                else f"use steps below {total}, or --steps N for the copies"
            )
        )
    mask = None if r == 0 else Mask.load(round_file(run_dir, r, MASK_FILE))
    stage = on_stage or (lambda _: None)
    stage(f"replaying round 0 of the run to step {max(ks)}" if max(ks) else "starting from the run's init")
    states = states_at_steps(built, ks)
    inputs: dict[str, float] = {}
    paths, lengths = {}, {}
    for k in ks:
        lengths[k] = steps if steps is not None else total - k
        stage(f"rewind step {k}: training two copies for {lengths[k]} steps each, then {points} points")
        seeds = tuple(config.seed + off for off in SEED_OFFSETS)
        paths[k] = instability(
            built.model,
            _copy_trainer(built, lengths[k]),
            _evaluator(built, inputs),
            state=states[k],
            mask=mask,
            seeds=seeds,
            points=points,
            round=r,
        )
    report = StabilityReport(
        round=r,
        density=mask.density if mask is not None else 1.0,
        threshold=threshold,
        paths=paths,
        steps=lengths,
        input_psnr=inputs,
        run_seed=config.seed,
    )
    if save:
        save_report(layout, report, title=f"{model_label(config.model)}/{config.size}")
    return report


def spaced_subset(dataset: Any, n: int) -> Any:
    """``n`` items of ``dataset`` at evenly spaced indices (all of it when it holds at most ``n``)."""
    size = len(dataset)
    if n >= size:
        return dataset
    return Subset(dataset, [i * size // n for i in range(n)])


def states_at_steps(built: BuiltRun, ks: Sequence[int]) -> dict[int, Weights]:
    """The run's weights at each step k of round 0 (0: its init), by replaying round 0 up to max(ks).

    The replay is the run's round 0 (trainer, seed, schedule), stopped after the last step wanted.
    """
    init = {key: t.detach().clone() for key, t in named_tensors(built.model).items()}
    states: dict[int, Weights] = {0: init} if 0 in ks else {}
    wanted = tuple(k for k in ks if k > 0)
    if not wanted:
        return states
    net = copy.deepcopy(built.model)

    def keep(k: int | None) -> None:
        if k is not None:
            states[k] = {key: t.detach().to("cpu", copy=True) for key, t in named_tensors(net).items()}

    ctx = RoundContext.for_round(0, 1.0, rewind_steps=wanted, seed=built.config.seed, on_mark=keep)
    cfg = dataclasses.replace(built.trainer.config, should_stop=lambda: all(k in states for k in wanted))
    try:
        RestorationTrainer(built.train_set, cfg)(net, ctx)
    except TrainingStopped:
        pass  # stopped after the last step wanted, as asked
    return states


def _copy_trainer(built: BuiltRun, steps: int) -> Callable[[nn.Module, RoundContext], dict[str, Any]]:
    """A round of the run's trainer, ``steps`` long, whose data order follows ``ctx.seed``."""
    # Warm-up and learning rate stay the run's: each copy is one more round of the run, only shorter.
    cfg = dataclasses.replace(built.trainer.config, steps=steps, epochs=None, seed=None, should_stop=None)
    trainer = RestorationTrainer(built.train_set, cfg)
    return lambda model, ctx: trainer(model, ctx)


def _evaluator(built: BuiltRun, inputs: dict[str, float]) -> Callable[[nn.Module], dict[str, float]]:
    """PSNR per test set as the run scores its rounds; the degraded inputs' PSNR is kept in ``inputs``."""

    def evaluate(model: nn.Module) -> dict[str, float]:
        summary = built.evaluate(model)["eval"]
        for label, scores in summary.items():
            if "input_psnr" in scores:
                inputs.setdefault(label, float(scores["input_psnr"]))
        return {label: float(scores["psnr"]) for label, scores in summary.items()}

    return evaluate


def _check_steps(steps: Sequence[int]) -> tuple[int, ...]:
    bad = [k for k in steps if not isinstance(k, int) or isinstance(k, bool) or k < 0]
    if bad or not steps:
        raise ValueError(f"--rewind-steps takes optimizer steps of round 0 (integers >= 0), got {list(steps)}")
    return tuple(sorted(set(steps)))


def save_report(layout: RunLayout, report: StabilityReport, title: str = "") -> None:
    """``analysis/stability.json`` and its figure, each written atomically."""
    from .figures import write_stability_figure

    layout.analysis.mkdir(parents=True, exist_ok=True)
    atomic_write_text(layout.stability, json.dumps(_finite(report.to_dict()), indent=2))
    write_stability_figure(report, layout.stability_figure, title=title)


def _finite(value: Any) -> Any:
    """NaN and infinity as null: the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def load_report(run_dir: str | os.PathLike) -> StabilityReport:
    """The stored stability analysis of a run; a clear error when there is none or it is damaged."""
    path = RunLayout(run_dir).stability
    if not path.is_file():
        raise RunError(
            f"{run_dir} holds no stability analysis ({path} is missing); run `lotteryir stability {run_dir} "
            "--round N --rewind-steps 0,20,60,150` first"
        )
    try:
        data = json.loads(path.read_text())
        if data.get("version") != STABILITY_VERSION:
            raise ValueError(f"unsupported version {data.get('version')!r}")
        return StabilityReport.from_dict(_nan(data))
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise RunError(f"{path} is damaged ({e}); rerun `lotteryir stability {run_dir}` to rewrite it") from e


def _nan(value: Any) -> Any:
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: _nan(v) if k not in ("stable_step",) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_nan(v) for v in value]
    return value


def resolve_auto_rewind(run_dir: str | os.PathLike, saved_rewind: str | None = None) -> str:
    """``step:auto`` as the rewind it stands for: ``step:K`` (``init`` for K = 0) with K the smallest stable step.

    ``saved_rewind``: the rewind of the run's finished rounds, if any; a run keeps one rewind, so a
    different K is refused with the command that starts a run rewinding to K.
    """
    if not is_run_dir(run_dir):
        raise RunError(
            f"--rewind step:auto reads the stability analysis stored in the run ({run_dir}), which is not a run "
            f"yet: prune it first (e.g. --rounds 0), then `lotteryir stability {run_dir} --rewind-steps 0,20,60`"
        )
    report = load_report(run_dir)
    k = report.stable_step
    if k is None:
        worst = ", ".join(f"k={kk}: {b:.2f} dB" for kk, b in sorted(report.barriers.items()))
        raise RunError(
            f"no rewind step in {RunLayout(run_dir).stability} is stable (barrier <= {report.threshold:g} dB; "
            f"{worst}); measure later steps with `lotteryir stability {run_dir} --rewind-steps ...`, or give "
            "--rewind step:K yourself"
        )
    rewind = "init" if k == 0 else f"step:{k}"
    if saved_rewind is not None and saved_rewind != rewind:
        raise RunError(
            f"--rewind step:auto is {rewind} (the smallest stable step in {RunLayout(run_dir).stability}), but "
            f"{run_dir} was pruned with --rewind {saved_rewind} and a run keeps its rewind; start a new run with "
            f"--rewind {rewind} and another --out (the same seed replays the same round 0)"
        )
    return rewind
