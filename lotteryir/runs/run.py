"""A pruning run on disk: configuration, per-round artifacts, resume, history.

Layout of a run directory::

    config.json            the resolved configuration, written before anything else
    lock                   held by the one process writing the run (PID inside)
    history.jsonl          one JSON line per finished round (rewritten atomically)
    pruner/                the pruner's state after the last finished round
    rounds/rNN/            mask.safetensors, ticket.safetensors (compact weights),
                           metrics.json, samples.png; ckpt*/ while the round trains
    report.png             PSNR against remaining weights (the lottery-ticket figure)

Every round checks what is already on disk: rerunning the same command resumes
from the last finished round, and inside a round from the trainer's last
checkpoint, so a finished run is identical to an uninterrupted one (on CPU).

Crash safety: a round is committed when ``pruner/`` is swapped in (its artifacts
are written before, each atomically). ``history.jsonl``, ``report.png`` and the
removal of the round's checkpoints follow the commit and are redone on the next
start from the committed rounds' ``metrics.json``, so history and pruner state
never disagree. Decisions of round 0 (which tensors received gradients) travel
with the trainer's checkpoints. A killed write leaves only ``.*.tmp`` names, which
the next start removes. Only one process writes a run: see :mod:`.lock`.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from .._files import atomic_write_text, is_leftover, remove_leftovers, temporary_dir
from ..data import DataError, get_recipe
from ..engine import NonFiniteLossError, RestorationTrainer, TrainConfig, TrainProgress, evaluate
from ..engine import distributed as ddp
from ..engine.threads import ThreadChoice, apply_threads, auto_threads
from ..models import apply_init, build_model
from ..models.init import identity_layer_rates
from ..pruning import IterativeMagnitudePruner, Mask, Rewind, RoundContext, RoundRecord
from ..pruning.ticket import save_compact
from .config import RunConfig
from .figures import write_report_figure, write_samples_figure
from .lock import LOCK_FILE, RunLock

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.jsonl"
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
    data: str | None = None  # the absolute data root (None for the built-in sample)
    extended_from: int | None = None  # the run had this many rounds; this command continues it
    world_size: int = 1  # processes (DistributedDataParallel ranks)
    batch_size: int = 8  # the global batch
    batch_per_rank: int = 8
    lr: float = 2e-4
    backend: str | None = None  # gloo or nccl under torchrun
    threads: int | None = None  # intra-op CPU threads in use
    threads_reason: str = ""


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


def run_dir_containing(path: str | os.PathLike) -> Path | None:
    """The run directory that ``path`` is (or lies inside), else None; outputs must never go there.

    Other programs write config.json files too (a home folder may hold one), so only a config.json
    that reads as a lotteryir run configuration counts.
    """
    path = Path(path).expanduser().resolve()
    for candidate in (path, *path.parents):
        if is_run_dir(candidate) and _reads_as_run_config(candidate / CONFIG_FILE):
            return candidate
    return None


def _reads_as_run_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"model", "recipe", "rate", "rewind", "seed"} <= set(data)


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
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    out = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise RunError(
                f"{path} is damaged at line {number} ({e.msg}); rerunning the prune command with the same "
                "--out rebuilds it from rounds/*/metrics.json"
            ) from e
        if not isinstance(entry, dict) or not isinstance(entry.get("round"), int):
            raise RunError(
                f"{path} is damaged at line {number} (not a round entry); rerunning the prune command rebuilds it"
            )
        out.append(entry)
    return out


def mean_scores(eval_summary: dict[str, dict[str, float]], of: str = "restored") -> tuple[float, float]:
    """Mean PSNR and SSIM over test sets, of the restored images or (``of="input"``) the degraded inputs."""
    prefix = {"restored": "", "input": "input_"}[of]
    values = [v for v in eval_summary.values() if f"{prefix}psnr" in v]
    if not values or len(values) != len(eval_summary):
        return float("nan"), float("nan")
    return (
        statistics.fmean(v[f"{prefix}psnr"] for v in values),
        statistics.fmean(v[f"{prefix}ssim"] for v in values),
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
        self._threads_reason = "--threads"
        self.callbacks = callbacks or RunCallbacks()
        self.should_stop = should_stop
        self.extended_from: int | None = None  # rounds of the run before this command asked for more
        # Rank 0 is the one writer (torchrun's RANK is known before the process group starts).
        self._lock = RunLock(self.dir) if ddp.env_rank() == 0 else None
        self._created = False
        self.leftovers: list[Path] = []  # temporary files of killed writes, removed on this start
        self._built = False
        try:
            self._open(config)
        except BaseException:
            self.close()
            raise

    def _open(self, config: RunConfig | None) -> None:
        """Lock the directory (the writer), clear leftovers, then check what it holds."""
        if self.dir.exists() and not self.dir.is_dir():
            raise RunError(f"{self.dir} is a file, not a run directory; choose another --out")
        if self._lock is not None:
            self._created = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
            # Only a run's own folder is swept; before config.json exists the only write is config.json.
            if is_run_dir(self.dir):
                self.leftovers = remove_leftovers(self.dir)
            else:
                self.leftovers = [p for p in self.dir.iterdir() if self._config_leftover(p)]
                for p in self.leftovers:
                    p.unlink(missing_ok=True)
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
                # Operational settings (device, workers, checkpoint interval) follow the new command;
                # the thread count stays the run's own unless given, so a resumed run is bit-identical.
                if wanted.threads is None and saved.threads is not None:
                    wanted.threads = saved.threads
                    self._threads_reason = "kept from the run's start, so resuming is bit-identical"
                saved = wanted
            self.config = saved
        else:
            if config is None:
                raise RunError(f"{self.dir} is not a lotteryir run directory (no {CONFIG_FILE})")
            if self.dir.exists() and any(
                p.name != LOCK_FILE and not self._config_leftover(p) for p in self.dir.iterdir()
            ):
                raise RunError(f"{self.dir} exists and is not empty but holds no run; choose another --out")
            self.config = config.resolved()

    @staticmethod
    def _config_leftover(path: Path) -> bool:
        return is_leftover(path) and path.name.startswith(f".{CONFIG_FILE}.")

    def close(self) -> None:
        """Release the run's lock; ``run()`` does this when it returns or fails, ``plan()`` when it fails.

        If the directory never became a run (refused, or failed before writing config.json), the lock
        file this object made is removed, and so is the directory if this object made it and it is empty.
        """
        if self._lock is None or not self._lock.held:
            return
        # A directory that never became a run gets back what it was: no lock file, and gone if we made it.
        never_a_run = self._lock.created and not is_run_dir(self.dir)
        self._lock.release(remove=never_a_run)
        if never_a_run and self._created:
            try:
                self.dir.rmdir()
            except OSError:  # not empty: keep it
                pass

    def __enter__(self) -> PruningRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        if c.threads is None:
            self.threads = auto_threads()
            c.threads = self.threads.threads  # saved in config.json: a resumed run uses the same count
        else:
            self.threads = ThreadChoice(c.threads, self._threads_reason)
        if self.device.type == "cpu":
            apply_threads(self.threads)  # before the duration estimate and the first training step
        torch.manual_seed(c.seed)  # the dense initialization is part of the run's identity
        self.model = self._fresh_model()
        self.model.to(self.device)
        self._check_patch_size()
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
                threads=c.threads,
                loss=c.loss,
                should_stop=self.should_stop,
            ),
            progress=self._progress,
        )
        self._check_rewind_step()
        self.pruner = IterativeMagnitudePruner(
            self.model,
            self._closure,
            rate=c.rate,
            rounds=c.rounds,
            scope=c.scope,
            rewind=c.rewind,
            controls=tuple(c.controls),
            layer_rates=identity_layer_rates(c.init, c.rate),
            model_factory=self._fresh_model,  # random_reinit re-draws everything the constructor draws
            seed=c.seed,
            on_rewind_point=lambda step: self._save_pruner_state(include_model=False) if ddp.is_main() else None,
        )
        state = self._pruner_dir()
        if state is not None:
            self._load_pruner_state(state)
        self._kind = "ticket"
        self._built = True

    def _fresh_model(self) -> torch.nn.Module:
        """The run's network as it starts (builder + ``init``), under whatever RNG state is current."""
        return apply_init(build_model(self.config.model, self.config.size), self.config.init)

    def _check_patch_size(self) -> None:
        # A patch larger than every image would be almost all padding (and, large enough, exhaust memory).
        size, seen = self.config.patch_size, set()
        for task, part in self.train_set.parts.items():
            if id(part.source) in seen:
                continue
            seen.add(id(part.source))
            largest = part.source.largest_short_side(at_least=size)
            if largest < size:
                raise RunError(
                    f"--patch-size {size} is larger than every training image of {task} (the largest is "
                    f"{largest} px on its short side); use --patch-size {largest} or less"
                )

    def _check_rewind_step(self) -> None:
        rewind = Rewind.parse(self.config.rewind)
        k = rewind.step if rewind.kind == "step" else None
        total = self.trainer.plan()[1]
        if k is not None and k > total:
            length = f"--steps {self.config.steps}" if self.config.steps else f"--epochs {self.config.epochs}"
            raise RunError(
                f"--rewind step:{k} needs at least {k} optimizer steps in round 0, but a round has {total} "
                f"({length}); use --rewind step:K with K <= {total}, or longer rounds"
            )

    def _load_pruner_state(self, state: Path) -> None:
        # Check that every file parses before the pruner reads it, so damage names the file at fault.
        from safetensors import safe_open

        advice = f"restore it from a backup, or start again with a new --out ({self.dir} is left as it is)"
        names = ("pruner.json", "mask.safetensors", "rewind.safetensors", "model.safetensors")
        for path in [state / n for n in names if n == "pruner.json" or (state / n).is_file()]:
            try:
                if path.suffix == ".json":
                    json.loads(path.read_text())
                else:
                    with safe_open(str(path), framework="pt"):
                        pass
            except Exception as e:  # noqa: BLE001 - json and safetensors raise their own types
                raise RunError(f"{path} is damaged ({e}); {advice}") from e
        try:
            self.pruner.load_state(state)
        except (ValueError, KeyError, RuntimeError) as e:
            raise RunError(f"the pruner state in {state} cannot be used ({e}); {advice}") from e

    def _pruner_dir(self) -> Path | None:
        for name in ("pruner", "pruner.old"):  # .old survives a crash between the two renames
            if (self.dir / name / "pruner.json").is_file():
                return self.dir / name
        return None

    def _save_pruner_state(self, include_model: bool = True) -> None:
        # Several files must change together: write a new directory, then swap it in.
        final, old = self.dir / "pruner", self.dir / "pruner.old"
        tmp = temporary_dir(final)
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
            input_psnr, input_ssim = mean_scores(summary, of="input")
            if kind == "ticket":
                write_samples_figure(model, self.test_sets, rdir / "samples.png", device=self.device)
            metrics = {
                "train": train,
                "eval": summary,
                "mean_psnr": psnr,
                "mean_ssim": ssim,
                "mean_input_psnr": input_psnr,
                "mean_input_ssim": input_ssim,
            }
        # Every rank keeps rank 0's record (and waits here while rank 0 evaluates).
        return ddp.broadcast_object(metrics)

    # -- running -------------------------------------------------------------
    def round_dir(self, r: int) -> Path:
        return self.dir / "rounds" / f"r{r:02d}"

    def plan(self, estimate: bool = True) -> RunPlan:
        """What the run will do, with an expected duration measured on this machine.

        If it raises (a bad option, missing data), the run is closed and its lock released.
        """
        try:
            self._build()
        except BaseException:
            self.close()
            raise
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
            data=self.config.data,
            extended_from=self.extended_from,
            world_size=world,
            batch_size=self.config.batch_size,
            batch_per_rank=per_rank,
            lr=self.config.lr,
            backend=torch.distributed.get_backend() if ddp.is_distributed() else None,
            threads=self.threads.threads if self.device.type == "cpu" else None,
            threads_reason=self.threads.reason,
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
        if self._lock is not None and not self._lock.held:
            raise RunError(f"this PruningRun of {self.dir} is closed; create a new one to resume the run")
        try:
            self._build()
            # Every rank has checked the directory (in __init__) before rank 0 writes into it.
            ddp.barrier()
            if ddp.is_main():
                self.dir.mkdir(parents=True, exist_ok=True)
                if not (self.dir / CONFIG_FILE).is_file() or self.extended_from is not None:
                    atomic_write_text(self.dir / CONFIG_FILE, json.dumps(self.config.to_dict(), indent=2))
                self._repair()
            while not self.pruner.finished:
                record = self.pruner.run_round()
                self._debug_dump_mask(record.round)
                if ddp.is_main():
                    self._finish_round(record)
                ddp.barrier()  # the round's files are complete before any rank moves on
            return read_history(self.dir)
        except NonFiniteLossError as e:
            raise RunError(self._non_finite_advice(e)) from e
        finally:
            ddp.shutdown()
            self.close()

    def _non_finite_advice(self, e: NonFiniteLossError) -> str:
        # Continuing this directory with another --lr would mix two training recipes in one
        # lottery-ticket curve (its finished rounds, or at least its config.json, fix the lr), so the
        # only sound way on is a new run.
        lr = self.config.lr
        tied = (
            f"its finished rounds 0-{self.pruner.round} were trained with --lr {lr:g}"
            if self.pruner.round >= 0
            else f"its config.json fixes --lr {lr:g}"
        )
        return (
            f"the training loss became {e.loss} at step {e.step} of round {e.round} (learning rate {e.lr:.3g} at that "
            f"step); rerunning the same command would fail the same way, and {self.dir} cannot continue with "
            f"another --lr because {tied}. Start a new run with a lower --lr and a new --out, e.g. "
            f"--lr {lr / 10:g} --out {self.dir}-lr{lr / 10:g}; {self.dir} is kept as it is"
        )

    def _repair(self) -> None:
        """Bring what follows a round's commit (history, figure, checkpoint removal) in step with it."""
        done = self.pruner.round
        history_path = self.dir / HISTORY_FILE
        try:
            current = read_history(self.dir)
        except RunError:
            current = None  # damaged: rebuilt below from the rounds' own records
        by_round = {h["round"]: h for h in current or []}
        entries = [self._committed_entry(r, by_round.get(r)) for r in range(done + 1)]
        if current != entries:
            if entries or history_path.exists():
                log.info("rebuilding %s from the %d committed round(s)", history_path, len(entries))
                atomic_write_text(history_path, "".join(json.dumps(h) + "\n" for h in entries))
        if entries and (current != entries or not (self.dir / "report.png").is_file()):
            write_report_figure(entries, self.dir / "report.png", title=f"{self.config.model}/{self.config.size}")
        for r in range(done + 1):
            for ckpt in self.round_dir(r).glob("ckpt*"):
                shutil.rmtree(ckpt, ignore_errors=True)
        if (self.dir / "pruner" / "pruner.json").is_file():
            shutil.rmtree(self.dir / "pruner.old", ignore_errors=True)

    def _committed_entry(self, r: int, fallback: dict[str, Any] | None) -> dict[str, Any]:
        path = self.round_dir(r) / "metrics.json"
        try:
            entry = json.loads(path.read_text())
            if isinstance(entry, dict) and entry.get("round") == r:
                return entry
        except (OSError, json.JSONDecodeError):
            pass
        if fallback is not None:
            return fallback
        raise RunError(
            f"{path} is missing or damaged and {self.dir / HISTORY_FILE} has no round {r} either; "
            f"start again with a new --out ({self.dir} is left as it is)"
        )

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
        atomic_write_text(self.dir / HISTORY_FILE, "".join(json.dumps(h) + "\n" for h in history))
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
            "mean_input_psnr": m.get("mean_input_psnr"),
            "mean_input_ssim": m.get("mean_input_ssim"),
            "controls": {
                kind: {
                    "eval": v.get("eval", {}),
                    "mean_psnr": v.get("mean_psnr"),
                    "mean_ssim": v.get("mean_ssim"),
                    "train": v.get("train", {}),
                }
                for kind, v in record.controls.items()
            },
        }
