"""A pruning run on disk: configuration, per-round artifacts, resume, history.

Layout of a run directory::

    config.json            the resolved configuration, written before anything else
    history.jsonl          one JSON line per finished round (rewritten atomically)
    pruner/                the pruner's state after the last finished round
    rounds/rNN/            mask.safetensors, ticket.safetensors (compact weights),
                           metrics.json, samples.png; ckpt*/ while the round trains
    report.png             PSNR against remaining weights (the lottery-ticket figure)

Every round checks what is already on disk: rerunning the same command resumes
from the last finished round, and inside a round from the trainer's last
checkpoint, so a finished run is identical to an uninterrupted one (on CPU).

Under torchrun (WORLD_SIZE > 1) every process trains a DistributedDataParallel
replica; only rank 0 writes the run directory, evaluates and calls the
callbacks, the others wait at a barrier and read the same files on resume (on
several machines the run directory must be on a shared filesystem).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .. import __version__
from ..data import DataError, get_recipe
from ..engine import RestorationTrainer, TrainConfig, TrainProgress, evaluate
from ..engine import distributed as ddp
from ..models import build_model
from ..pruning import IterativeMagnitudePruner, Mask, RoundContext, RoundRecord
from ..pruning.files import atomic_write_text
from ..pruning.ticket import save_compact
from .config import RunConfig
from .figures import write_report_figure, write_samples_figure

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
# Test-only introspection: each rank writes its own mask of every round here (rank<k>/rNN.safetensors).
DEBUG_MASKS_ENV = "LOTTERYIR_DEBUG_MASKS_DIR"


class RunError(ValueError):
    """A problem with a run directory or its configuration, phrased for the user."""


@dataclass
class RunPlan:
    """What a run is about to do (the CLI's first line)."""

    recipe: str
    model: str
    size: str
    params: int
    device: str
    rounds: int
    trainings: int
    steps_per_training: int
    expected_seconds: float | None
    resumed_from_round: int
    extended_from: int | None = None  # the run had this many rounds; this command continues it
    world_size: int = 1  # processes (DistributedDataParallel ranks)
    batch_size: int = 8  # the global batch
    batch_per_rank: int = 8
    lr: float = 2e-4
    backend: str | None = None  # gloo or nccl under torchrun


@dataclass
class RunCallbacks:
    """Hooks for whoever draws progress; the library itself prints nothing. Called on rank 0 only."""

    on_plan: Callable[[RunPlan], None] | None = None
    on_train_start: Callable[[int, float, str, int], None] | None = None  # round, density, kind, total steps
    on_step: Callable[[TrainProgress, str], None] | None = None
    on_evaluate: Callable[[int, str], None] | None = None
    on_round_end: Callable[[dict[str, Any]], None] | None = None


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def read_config(run_dir: str | os.PathLike) -> RunConfig:
    """The saved configuration of a run directory (clear error if it is not one)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} is not a lotteryir run directory (no {CONFIG_FILE})")
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise RunError(f"{path} is not a valid run configuration: {e}") from e


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The finished rounds of a run, oldest first."""
    path = Path(run_dir) / "history.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def mean_scores(eval_summary: dict[str, dict[str, float]]) -> tuple[float, float]:
    """Mean PSNR and SSIM over test sets."""
    if not eval_summary:
        return float("nan"), float("nan")
    return (
        statistics.fmean(v["psnr"] for v in eval_summary.values()),
        statistics.fmean(v["ssim"] for v in eval_summary.values()),
    )


class PruningRun:
    """Runs (or resumes) the IMP search that ``config`` describes, in ``out_dir``."""

    def __init__(
        self,
        out_dir: str | os.PathLike,
        config: RunConfig | None = None,
        callbacks: RunCallbacks | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.dir = Path(out_dir)
        self.callbacks = callbacks or RunCallbacks()
        self.should_stop = should_stop
        self.extended_from: int | None = None  # rounds of the run before this command asked for more
        if is_run_dir(self.dir):
            saved = read_config(self.dir)
            if config is not None:
                wanted = config.resolved()
                diff = saved.differences(wanted, allow_growth=True)
                if diff:
                    raise RunError(
                        f"{self.dir} holds a run with a different configuration ({'; '.join(diff[:4])}); "
                        "use another --out, the same options to resume, or a larger --rounds (smaller "
                        "--target-density) to continue it"
                    )
                if wanted.rounds > saved.rounds:
                    self.extended_from = saved.rounds
                # Operational settings (device, workers, checkpoint interval) follow the new command.
                saved = wanted
            self.config = saved
        else:
            if config is None:
                raise RunError(f"{self.dir} is not a lotteryir run directory (no {CONFIG_FILE})")
            if self.dir.exists() and any(self.dir.iterdir()):
                raise RunError(f"{self.dir} exists and is not empty but holds no run; choose another --out")
            self.config = config.resolved()
        self._built = False

    # -- building ------------------------------------------------------------
    def _build(self) -> None:
        if self._built:
            return
        c = self.config
        recipe = get_recipe(c.recipe, root=c.data, **c.data_paths)
        problems = recipe.check()
        if problems:
            more = f"; ... ({len(problems) - 3} more)" if len(problems) > 3 else ""
            raise DataError(f"recipe {c.recipe!r} cannot run on {c.data}: " + "; ".join(problems[:3]) + more)
        self.tasks = list(c.tasks) if c.tasks else list(recipe.tasks)
        self.train_set = recipe.train_dataset(patch_size=c.patch_size, seed=c.seed, tasks=self.tasks)
        self.test_sets = recipe.test_sets(tasks=self.tasks)
        self.device = ddp.init_from_env(c.device)
        torch.manual_seed(c.seed)  # the dense initialization is part of the run's identity
        self.model = build_model(c.model, c.size)
        self.model.to(self.device)
        self.trainer = RestorationTrainer(
            self.train_set,
            TrainConfig(
                epochs=c.epochs,
                steps=c.steps,
                warmup_epochs=c.warmup_epochs,
                batch_size=c.batch_size,
                lr=c.lr,
                device=self.device,
                num_workers=c.num_workers,
                checkpoint_every=c.checkpoint_every,
                seed=c.seed,
                should_stop=self.should_stop,
            ),
            progress=self._progress,
        )
        self.pruner = IterativeMagnitudePruner(
            self.model,
            self._closure,
            rate=c.rate,
            rounds=c.rounds,
            scope=c.scope,
            rewind=c.rewind,
            controls=tuple(c.controls),
            seed=c.seed,
            on_rewind_point=lambda step: self._save_pruner_state(include_model=False) if ddp.is_main() else None,
        )
        state = self._pruner_dir()
        if state is not None:
            self.pruner.load_state(state)
        self._kind = "ticket"
        self._built = True

    def _pruner_dir(self) -> Path | None:
        for name in ("pruner", "pruner.old"):  # .old survives a crash between the two renames
            if (self.dir / name / "pruner.json").is_file():
                return self.dir / name
        return None

    def _save_pruner_state(self, include_model: bool = True) -> None:
        # Several files must change together: write a new directory, then swap it in.
        final, old = self.dir / "pruner", self.dir / "pruner.old"
        tmp = Path(tempfile.mkdtemp(prefix="pruner.", dir=self.dir))
        self.pruner.save_state(tmp, include_model=include_model)
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    # -- the closure the pruner calls -----------------------------------------
    def _progress(self, p: TrainProgress) -> None:
        if self.callbacks.on_step is not None:
            self.callbacks.on_step(p, self._kind)

    def _closure(self, model: torch.nn.Module, ctx: RoundContext) -> dict[str, Any]:
        kind = ctx.extras.get("control", "ticket")
        self._kind = kind
        main = ddp.is_main()
        rdir = self.round_dir(ctx.round)
        ctx.checkpoint_dir = rdir / ("ckpt" if kind == "ticket" else f"ckpt-{kind}")
        if self.callbacks.on_train_start is not None and main:
            self.callbacks.on_train_start(ctx.round, ctx.density, kind, self.trainer.plan()[1])
        train = self.trainer(model, ctx)
        metrics = None
        if main:  # the replicas are identical: rank 0's evaluation is the single-process one
            if self.callbacks.on_evaluate is not None:
                self.callbacks.on_evaluate(ctx.round, kind)
            result = evaluate(model, self.test_sets, device=self.device, tile=self.config.eval_tile)
            summary = result.summary()
            psnr, ssim = mean_scores(summary)
            if kind == "ticket":
                write_samples_figure(model, self.test_sets, rdir / "samples.png", device=self.device)
            metrics = {"train": train, "eval": summary, "mean_psnr": psnr, "mean_ssim": ssim}
        # Every rank keeps rank 0's record (and waits here while rank 0 evaluates).
        return ddp.broadcast_object(metrics)

    # -- running -------------------------------------------------------------
    def round_dir(self, r: int) -> Path:
        return self.dir / "rounds" / f"r{r:02d}"

    def plan(self, estimate: bool = True) -> RunPlan:
        """What the run will do, with an expected duration measured on this machine."""
        self._build()
        per_training = self.trainer.plan()[1]
        world, per_rank = self.trainer.batch_split()
        remaining_rounds = self.config.rounds - self.pruner.round
        trainings = remaining_rounds * (1 + len(self.config.controls)) - (
            len(self.config.controls) if self.pruner.round < 0 else 0
        )
        seconds = self._estimate(trainings, per_training) if estimate else None
        return RunPlan(
            recipe=self.config.recipe,
            model=self.config.model,
            size=self.config.size or "",
            params=sum(p.numel() for p in self.model.parameters()),
            device=str(self.device),
            rounds=self.config.rounds,
            trainings=trainings,
            steps_per_training=per_training,
            expected_seconds=seconds,
            resumed_from_round=self.pruner.round,
            extended_from=self.extended_from,
            world_size=world,
            batch_size=self.config.batch_size,
            batch_per_rank=per_rank,
            lr=self.config.lr,
            backend=torch.distributed.get_backend() if ddp.is_distributed() else None,
        )

    def _estimate(self, trainings: int, steps: int) -> float:
        """Seconds for ``trainings`` trainings and evaluations, from a few timed steps on a copy."""
        import copy

        c = self.config
        model = copy.deepcopy(self.model).train()
        opt = torch.optim.AdamW(model.parameters(), lr=c.lr)
        x = torch.rand(self.trainer.batch_split()[1], 3, c.patch_size, c.patch_size, device=self.device)
        with torch.random.fork_rng(devices=[]):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                opt.zero_grad()
                (model(x) - x).abs().mean().backward()
                opt.step()
                times.append(time.perf_counter() - t0)
            model.eval()
            first = next(iter(self.test_sets.values()))[0]["input"]
            t0 = time.perf_counter()
            with torch.no_grad():
                model(first.unsqueeze(0).to(self.device))
            per_image = time.perf_counter() - t0
        n_images = sum(len(s) for s in self.test_sets.values())
        return trainings * (steps * min(times[1:]) + n_images * per_image * 1.5)

    def run(self) -> list[dict[str, Any]]:
        """Train every remaining round; returns the history (one dict per round).

        Under torchrun every process calls this; the process group it started
        is destroyed when it returns or raises.
        """
        try:
            self._build()
            # Every rank has checked the directory (in __init__) before rank 0 writes into it.
            ddp.barrier()
            if ddp.is_main():
                self.dir.mkdir(parents=True, exist_ok=True)
                if not (self.dir / CONFIG_FILE).is_file() or self.extended_from is not None:
                    atomic_write_text(self.dir / CONFIG_FILE, json.dumps(self.config.to_dict(), indent=2))
            while not self.pruner.finished:
                record = self.pruner.run_round()
                self._debug_dump_mask(record.round)
                if ddp.is_main():
                    self._finish_round(record)
                ddp.barrier()  # the round's files are complete before any rank moves on
            return read_history(self.dir)
        finally:
            ddp.shutdown()

    def _debug_dump_mask(self, r: int) -> None:
        target = os.environ.get(DEBUG_MASKS_ENV)
        if target:
            self.pruner.mask.save(Path(target) / f"rank{ddp.rank()}" / f"r{r:02d}.safetensors")

    def _finish_round(self, record: RoundRecord) -> None:
        r = record.round
        rdir = self.round_dir(r)
        mask = self.pruner.mask
        mask.save(rdir / "mask.safetensors")
        save_compact(
            self.pruner.export_state_dict(),
            mask,
            rdir / "ticket.safetensors",
            metadata=self.ticket_metadata(r, mask),
        )
        entry = self._history_entry(record)
        atomic_write_text(rdir / "metrics.json", json.dumps(entry, indent=2))
        self._save_pruner_state()
        history = [h for h in read_history(self.dir) if h["round"] < r] + [entry]
        atomic_write_text(self.dir / "history.jsonl", "".join(json.dumps(h) + "\n" for h in history))
        write_report_figure(history, self.dir / "report.png", title=f"{self.config.model}/{self.config.size}")
        for ckpt in rdir.glob("ckpt*"):
            shutil.rmtree(ckpt, ignore_errors=True)
        if self.callbacks.on_round_end is not None:
            self.callbacks.on_round_end(entry)

    def ticket_metadata(self, r: int, mask: Mask) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "size": self.config.size,
            "density": mask.density,
            "round": r,
            "source_run": str(self.dir.resolve()),
            "lotteryir_version": __version__,
        }

    def _history_entry(self, record: RoundRecord) -> dict[str, Any]:
        m = record.metrics
        return {
            "round": record.round,
            "density": record.density,
            "remaining": record.remaining,
            "total": record.total,
            "seconds": record.seconds,
            "train": m.get("train", {}),
            "eval": m.get("eval", {}),
            "mean_psnr": m.get("mean_psnr"),
            "mean_ssim": m.get("mean_ssim"),
            "controls": {
                kind: {"eval": v.get("eval", {}), "mean_psnr": v.get("mean_psnr"), "mean_ssim": v.get("mean_ssim"),
                       "train": v.get("train", {})}
                for kind, v in record.controls.items()
            },
        }
