"""A pruning run on disk: configuration, per-round artifacts, resume.

The directory's layout is :mod:`.layout`; what trains is built by :func:`.build.build_run`; the
history and its repair are :mod:`.history`.

Every round checks what is already on disk: rerunning the same command resumes
from the last finished round, and inside a round from the trainer's last
checkpoint, so a finished run is identical to an uninterrupted one (on CPU).

Crash safety: a round is committed when ``pruner/`` is swapped in (its artifacts
are written before, each atomically). ``history.jsonl``, ``report.png`` and the
removal of the round's checkpoints follow the commit and are redone on the next
start from the committed rounds' ``metrics.json``, so history and pruner state
never disagree. Decisions of round 0 (which tensors received gradients) travel
with the trainer's checkpoints. A killed write leaves only ``.*.tmp`` names, which
the next start removes. Only one process writes a run: see :mod:`.lock`. A run
that fails (not stopped) before its first round is committed leaves nothing behind.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .._files import atomic_write_text, is_leftover, remove_leftovers
from ..checkpoints import write_ticket
from ..engine import NonFiniteLossError, TrainProgress
from ..engine import distributed as ddp
from ..engine.train import TrainingStopped
from ..pruning import IterativeMagnitudePruner, RoundContext, RoundRecord
from .build import BuiltRun, build_run
from .config import RunConfig
from .errors import RunError, non_finite_advice
from .figures import write_report_figure, write_samples_figure
from .history import append_round, history_entry, mean_scores, read_history, repair_history
from .layout import CONFIG_FILE, HISTORY_FILE, RunLayout, is_run_dir, not_a_run, read_config, run_dir_containing
from .lock import LOCK_FILE, RunLock
from .logs import RunLogs, parse_log
from .plan import RunCallbacks, RunPlan
from .resolved import GIVEN_THREADS, ResolvedRunConfig
from .state import save_pruner_state
from .verify import Rebuild, load_committed, rebuild_round_files

log = logging.getLogger(__name__)

# Kept importable from here (they lived in this module before the layout and history had their own).
__all__ = [
    "HISTORY_FILE",
    "PruningRun",
    "RunCallbacks",
    "RunError",
    "RunPlan",
    "is_run_dir",
    "mean_scores",
    "read_config",
    "read_history",
    "run_dir_containing",
]
# Test-only introspection: each rank writes its own mask of every round here (rank<k>/rNN.safetensors).
DEBUG_MASKS_ENV = "LOTTERYIR_DEBUG_MASKS_DIR"


class PruningRun:
    """Runs (or resumes) the IMP search that ``config`` describes, in ``out_dir``."""

    def __init__(
        self,
        out_dir: str | os.PathLike,
        config: RunConfig | ResolvedRunConfig | None = None,
        callbacks: RunCallbacks | None = None,
        should_stop: Callable[[], bool] | None = None,
        log: str | Sequence[str] | None = None,
    ) -> None:
        """``log``: ``"csv"`` and/or ``"tensorboard"`` (a list or a comma-separated string), see :mod:`.logs`."""
        self.dir = Path(out_dir)
        self.layout = RunLayout(self.dir)
        self.logs = RunLogs(self.layout, parse_log(log))
        self.callbacks = callbacks or RunCallbacks()
        self.should_stop = should_stop
        self.extended_from: int | None = None  # rounds of the run before this command asked for more
        # Rank 0 is the one writer (torchrun's RANK is known before the process group starts).
        self._lock = RunLock(self.dir) if ddp.env_rank() == 0 else None
        self._created = False
        self._fresh = False  # this object writes config.json: the directory held no run before
        self.leftovers: list[Path] = []  # temporary files of killed writes, removed on this start
        self.rebuild: list[Rebuild] = []  # missing files of finished rounds, rebuilt on this start
        self.built: BuiltRun | None = None
        self._kind = "ticket"  # what trains now: the ticket or a control (for the progress callback)
        try:
            self._open(config)
        except BaseException:
            self.close()
            raise

    def _open(self, config: RunConfig | ResolvedRunConfig | None) -> None:
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
                wanted = config.resolved() if isinstance(config, RunConfig) else config
                changed = saved.changed_model_file(wanted)
                if changed:
                    raise RunError(
                        f"{changed}; {self.dir} was trained with the file as it was: restore it, or start a "
                        "new run with another --out"
                    )
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
                if not _threads_given(config):
                    wanted = wanted.replace(threads=saved.threads, threads_reason=saved.threads_reason)
                saved = wanted
            self.config = saved
        else:
            if config is None:
                raise not_a_run(self.dir, f"{self.dir} is not a lotteryir run directory (no {CONFIG_FILE})")
            if self.dir.exists() and any(
                p.name != LOCK_FILE and not self._config_leftover(p) for p in self.dir.iterdir()
            ):
                raise not_a_run(self.dir, f"{self.dir} exists and is not empty but holds no run; choose another --out")
            self.config = config.resolved() if isinstance(config, RunConfig) else config
            self._fresh = True

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

    def _discard(self) -> None:
        """Remove what this object wrote into a run that failed before its first round was committed.

        Only a run this object started (the directory was empty or new, see ``_open``) and only while
        the lock is held: a folder the user had keeps existing, and finished work is never touched.
        """
        if not self._fresh or self._lock is None or not self._lock.held or self.layout.pruner_state() is not None:
            return
        for p in list(self.dir.iterdir()):
            if p.name == LOCK_FILE:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    def __enter__(self) -> PruningRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building ------------------------------------------------------------
    @property
    def pruner(self) -> IterativeMagnitudePruner:
        return self._built().pruner

    def _built(self) -> BuiltRun:
        if self.built is None:
            self.built = build_run(
                self.config,
                self._closure,
                progress=self._progress,
                should_stop=self.should_stop,
                on_rewind_point=lambda step: self._save_pruner_state(include_model=False) if ddp.is_main() else None,
            )
            self._kind = "ticket"
            self.rebuild = load_committed(self.built, self.layout)  # checks every finished round's files
        return self.built

    def _save_pruner_state(self, include_model: bool = True) -> None:
        save_pruner_state(self.pruner, self.layout, include_model=include_model)

    # -- the closure the pruner calls -----------------------------------------
    def _progress(self, p: TrainProgress) -> None:
        self.logs.step(p, self._kind)
        if self.callbacks.on_step is not None:
            self.callbacks.on_step(p, self._kind)

    def _closure(self, model: torch.nn.Module, ctx: RoundContext) -> dict[str, Any]:
        kind = ctx.extras.get("control", "ticket")
        self._kind = kind
        main = ddp.is_main()
        built = self._built()
        ctx.checkpoint_dir = self.layout.checkpoint(ctx.round, kind)
        if self.callbacks.on_train_start is not None and main:
            steps = built.trainer.plan()[1] if self.config.trains(ctx.round) else 0
            self.callbacks.on_train_start(ctx.round, ctx.density, kind, steps)
        train = built.train(model, ctx)
        metrics = None
        if main:  # the replicas are identical: rank 0's evaluation is the single-process one
            if self.callbacks.on_evaluate is not None:
                self.callbacks.on_evaluate(ctx.round, kind)
            scores = built.evaluate(model)
            if kind == "ticket":
                write_samples_figure(model, built.test_sets, self.layout.samples(ctx.round), device=built.device)
            metrics = {"train": train, **scores}
        # Every rank keeps rank 0's record (and waits here while rank 0 evaluates).
        return ddp.broadcast_object(metrics)

    # -- running -------------------------------------------------------------
    def round_dir(self, r: int) -> Path:
        return self.layout.round(r)

    def plan(self, estimate: bool = True) -> RunPlan:
        """What the run will do, with an expected duration measured on this machine.

        If it raises (a bad option, missing data, a network that does not fit), the run is closed and
        its lock released: nothing is left behind.
        """
        try:
            built = self._built()
            per_training = built.trainer.plan()[1] if self.config.length.count else 0
            world, per_rank = built.trainer.batch_split()
            c, done = self.config, self.pruner.round
            # Round 0 has no controls; every other round scores the ticket and each control.
            units = {r: 1 if r == 0 else 1 + len(c.controls) for r in range(done + 1, c.rounds + 1)}
            evaluations = sum(units.values())
            trainings = sum(n for r, n in units.items() if c.trains(r))
            seconds = built.estimate_seconds(trainings, evaluations) if estimate else None
        except BaseException:
            self.close()
            raise
        return RunPlan(
            recipe=self.config.recipe,
            model=self.config.model,
            size=self.config.size,
            params=sum(p.numel() for p in built.model.parameters()),
            device=str(built.device),
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
            threads=built.threads.threads if built.device.type == "cpu" else None,
            threads_reason=built.threads.reason,
            method=self.config.method,
            rebuild=[str(x) for x in self.rebuild],
        )

    def run(self) -> list[dict[str, Any]]:
        """Train every remaining round; returns the history (one dict per round).

        Under torchrun every process calls this; the process group it started
        is destroyed when it returns or raises.
        """
        if self._lock is not None and not self._lock.held:
            raise RunError(f"this PruningRun of {self.dir} is closed; create a new one to resume the run")
        try:
            self._built()
            # Every rank has checked the directory (in __init__) before rank 0 writes into it.
            ddp.barrier()
            if ddp.is_main():
                self.dir.mkdir(parents=True, exist_ok=True)
                if not self.layout.config.is_file() or self.extended_from is not None:
                    atomic_write_text(self.layout.config, json.dumps(self.config.to_dict(), indent=2))
                self._repair()
                self.logs.start(read_history(self.dir))
            while not self.pruner.finished:
                record = self.pruner.run_round()
                self._debug_dump_mask(record.round)
                if ddp.is_main():
                    self._finish_round(record)
                ddp.barrier()  # the round's files are complete before any rank moves on
            return read_history(self.dir)
        except NonFiniteLossError as e:
            raise RunError(self._non_finite_advice(e)) from e
        except TrainingStopped:
            raise  # stopped on request: the round's checkpoint is what a rerun resumes from
        except Exception:
            self._fail()
            raise
        finally:
            self.logs.close()
            ddp.shutdown()
            self.close()

    def _fail(self) -> None:
        """Discard a run that fails before its first round is committed (a rerun then starts afresh).

        A diverged loss is not discarded: its directory is the evidence, and its advice says so.
        """
        if ddp.is_main() and self._fresh and self.built is not None and self.pruner.round < 0:
            self._discard()

    def _non_finite_advice(self, e: NonFiniteLossError) -> str:
        return non_finite_advice(self.dir, self.config.lr, self.pruner.round, e.what, e.step, e.round, e.lr)

    def _repair(self) -> None:
        """Bring what follows a round's commit (history, figure, checkpoint removal) in step with it."""
        rebuild_round_files(self._built(), self.layout, self.rebuild)  # first: the history reads metrics.json
        done = self.pruner.round
        entries, changed = repair_history(self.layout, done)
        if entries and (changed or not self.layout.report.is_file()):
            write_report_figure(entries, self.layout.report, title=f"{self.config.model}/{self.config.size}")
        for r in range(done + 1):
            for ckpt in self.layout.checkpoints(r):
                shutil.rmtree(ckpt, ignore_errors=True)
        if self.layout.pruner_state() == self.layout.pruner:
            shutil.rmtree(self.layout.pruner_old, ignore_errors=True)

    def _debug_dump_mask(self, r: int) -> None:
        target = os.environ.get(DEBUG_MASKS_ENV)
        if target:
            self.pruner.mask.save(Path(target) / f"rank{ddp.rank()}" / f"r{r:02d}.safetensors")

    def _finish_round(self, record: RoundRecord) -> None:
        r = record.round
        mask = self.pruner.mask
        mask.save(self.layout.mask(r))
        write_ticket(
            self.pruner.export_state_dict(),
            mask,
            self.layout.ticket(r),
            model=self.config.model,
            size=self.config.size,
            round=r,
            source_run=str(self.dir.resolve()),
        )
        entry = history_entry(record)
        atomic_write_text(self.layout.metrics(r), json.dumps(entry, indent=2))
        self._save_pruner_state()
        history = append_round(self.layout, entry)
        self.logs.round_end(history, mask)
        write_report_figure(history, self.layout.report, title=f"{self.config.model}/{self.config.size}")
        for ckpt in self.layout.checkpoints(r):
            shutil.rmtree(ckpt, ignore_errors=True)
        if self.callbacks.on_round_end is not None:
            self.callbacks.on_round_end(entry)


def _threads_given(config: RunConfig | ResolvedRunConfig) -> bool:
    """Whether the resuming command chose a thread count (else the run keeps its own)."""
    if isinstance(config, ResolvedRunConfig):
        return config.threads_reason == GIVEN_THREADS
    return config.threads is not None
