"""The default training closure: one round of L1 (or PSNR) loss and AdamW, restarted every round.

The loop is :meth:`RestorationTrainer.__call__`; what it calls lives beside it: the loss in
``losses.py``, the round length and learning rate in ``schedule.py``, the data order and the seeds
in ``sampling.py``, the resume checkpoint in ``resume.py``, the settings in ``config.py``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lotteryir._finite import nonfinite
from lotteryir.engine import distributed as ddp
from lotteryir.engine.compiled import CompiledNets
from lotteryir.engine.config import TrainConfig
from lotteryir.engine.device import pick_device
from lotteryir.engine.failures import NonFiniteLossError
from lotteryir.engine.losses import LOSSES
from lotteryir.engine.resume import TrainState, capture_rng, resume_round, save_resume_state
from lotteryir.engine.sampling import derive_seed, epoch_batches, epoch_loader, seed_global_rngs, unpack_batch
from lotteryir.engine.schedule import RoundPlan, lr_at, plan_round
from lotteryir.engine.threads import ThreadChoice, apply_threads, resolve_threads

if TYPE_CHECKING:  # the closure boundary is the only contact with the pruner, and only as a type
    from lotteryir.pruning.context import RoundContext

__all__ = [
    "TrainProgress",
    "RestorationTrainer",
    "NonFiniteLossError",
    "TrainingStopped",
    # Defined in config, schedule and sampling; importable from here as before the split.
    "TrainConfig",
    "lr_at",
    "derive_seed",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainProgress:
    """One optimizer step's report to the progress callback."""

    round: int
    step: int
    total_steps: int
    epoch: int
    loss: float
    mean_loss: float
    lr: float
    steps_per_sec: float
    eta_seconds: float


class TrainingStopped(RuntimeError):
    """Training stopped on request (``should_stop``); the round can resume from its checkpoint."""

    def __init__(self, step: int, checkpoint: Path | None):
        self.step, self.checkpoint = step, checkpoint
        saved = f"checkpoint written to {checkpoint}" if checkpoint is not None else "no checkpoint_dir, nothing saved"
        super().__init__(f"training stopped on request after step {step}; {saved}")


@dataclass
class _Round:
    """What one call of the trainer fixes before its first step, and the clock of the call."""

    ctx: RoundContext
    plan: RoundPlan
    world: int
    device: torch.device
    seed: int
    ckpt_dir: Path | None
    fingerprint: dict[str, Any]
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scaler: Any  # a GradScaler under fp16, else None
    autocast: AbstractContextManager[Any]
    saved_step: int | None = None  # the step of the checkpoint on disk, if any
    started: float = 0.0
    start_step: int = 0
    prior_seconds: float = 0.0  # training time of this round before a resume


class RestorationTrainer:
    """The default closure: ``RestorationTrainer(dataset, config)(model, ctx)`` trains one round.

    Each call builds a fresh AdamW and a fresh warm-up + cosine schedule over
    ``model.parameters()`` (with pruning masks attached these are the ``*_orig``
    tensors), which is the paper's per-round restart. Items are dicts with
    ``"input"`` and ``"target"`` tensors (or ``(input, target)`` pairs).

    Inside a torch.distributed process group (torchrun) the model is wrapped in
    DistributedDataParallel once per model object, ``batch_size`` stays the
    global batch (each of N ranks takes its 1/N slice of the very batch a single
    process would draw), so steps, learning rates and the data order equal a
    single-process run's. Only rank 0 writes checkpoints and reports progress;
    the reported loss is the mean over all ranks.
    """

    def __init__(
        self,
        dataset: Dataset,
        config: TrainConfig | None = None,
        progress: Callable[[TrainProgress], None] | None = None,
    ) -> None:
        self.dataset = dataset
        self.config = config or TrainConfig()
        self.progress = progress
        self._threads: ThreadChoice | None = None
        self._compiled = CompiledNets()  # one compiled forward per model object, kept across rounds

    @property
    def threads(self) -> ThreadChoice | None:
        """The intra-op thread count this trainer uses (chosen once, at first use), None if torch's own."""
        if self._threads is None and self.config.threads is not None:
            # Decided once and kept: a different count changes results in the last bits.
            self._threads = resolve_threads(self.config.threads)
        return self._threads

    def plan(self) -> tuple[int, int, int]:
        """(optimizer steps per epoch, total steps, warm-up steps) for this dataset and config."""
        plan = self._plan()
        return plan.steps_per_epoch, plan.total_steps, plan.warmup_steps

    def batch_split(self) -> tuple[int, int]:
        """(processes, per-process batch): the global ``batch_size`` divided among the ranks."""
        world, bs = ddp.world_size(), self.config.batch_size
        if bs % world:
            raise ValueError(
                f"batch_size {bs} is the global batch and must divide evenly among the {world} processes; "
                f"use a multiple of {world}"
            )
        return world, bs // world

    def __call__(self, model: nn.Module, ctx: RoundContext) -> dict[str, Any]:
        """Train ``model`` in place for one round; returns loss, steps, seconds and final lr."""
        run = self._prepare(model, ctx)
        state = self._resume_or_seed(run, model)
        # Nobody may write the next checkpoint (and delete this one) before every rank has read it.
        ddp.barrier()
        resumed_from = run.start_step = state.step
        run.started, run.prior_seconds = time.perf_counter(), state.seconds
        plan = run.plan
        lr = plan.lr(max(state.step - 1, 0))  # reported as lr_final when no step is left to run
        batches: Iterator[Any] | None = None
        ctx.total_steps = plan.total_steps  # a method may ask to stop earlier (ctx.stop_requested)
        while state.step < plan.total_steps and not ctx.stop_requested:
            epoch = state.step // plan.steps_per_epoch
            if batches is None or state.step % plan.steps_per_epoch == 0:  # an epoch starts, or a resume lands
                batches = iter(self._epoch(run, epoch, state.step % plan.steps_per_epoch))
            lr = plan.lr(state.step)
            step_loss = self._optimizer_step(run, model, batches, lr, state.step)
            state.step += 1
            state.loss_sum += step_loss
            state.last_loss = step_loss
            state.loss_count += 1
            ctx.step(state.step, loss=step_loss, lr=lr)
            self._report(run, state, epoch, step_loss, lr)
            stop, early = self._stop_requested(run), ctx.stop_requested
            if self._checkpoint_due(run, state.step, stop or early):
                self._save_checkpoint(run, model, state, lr)
            if stop and not early and state.step < plan.total_steps:
                raise TrainingStopped(state.step, run.ckpt_dir)
        return {
            "loss": state.loss_sum / state.loss_count if state.loss_count else math.nan,
            "loss_last": state.last_loss,
            "steps": state.step,
            "seconds": run.prior_seconds + time.perf_counter() - run.started,
            "lr_final": lr,
            "resumed_from": resumed_from,
            **({"stopped_early": ctx.stop_reason} if ctx.stop_requested else {}),
        }

    def _plan(self) -> RoundPlan:
        return plan_round(len(self.dataset), self.config)  # type: ignore[arg-type]

    def _prepare(self, model: nn.Module, ctx: RoundContext) -> _Round:
        """Check the setup, move the model to its device and build a fresh optimizer for the round."""
        cfg = self.config
        plan = self._plan()
        world, _ = self.batch_split()
        device = pick_device(cfg.device)
        amp_dtype = self._amp_dtype(device)
        seed = cfg.seed if cfg.seed is not None else ctx.seed
        if device.type == "cpu":
            apply_threads(self.threads)
        model.to(device)
        model.train()
        net = ddp.ddp_wrap(model, device, find_unused_parameters=cfg.find_unused_parameters)
        net = self._compiled(net, cfg.compile)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=cfg.lr,
            betas=cfg.betas,
            weight_decay=cfg.weight_decay,
        )
        return _Round(
            ctx=ctx,
            plan=plan,
            world=world,
            device=device,
            seed=seed,
            ckpt_dir=Path(ctx.checkpoint_dir) if ctx.checkpoint_dir is not None else None,
            fingerprint=self._fingerprint(ctx.round, seed, plan),
            net=net,
            optimizer=optimizer,
            scaler=torch.amp.GradScaler("cuda") if amp_dtype is torch.float16 else None,
            autocast=(
                torch.autocast(device_type=device.type, dtype=amp_dtype)
                if amp_dtype is not None
                else contextlib.nullcontext()
            ),
        )

    def _fingerprint(self, round_: int, seed: int, plan: RoundPlan) -> dict[str, Any]:
        """The settings a checkpoint must share with this call to be resumed by it."""
        cfg = self.config
        fingerprint: dict[str, Any] = {
            "round": round_,
            "seed": seed,
            "total_steps": plan.total_steps,
            "steps_per_epoch": plan.steps_per_epoch,
            "warmup_steps": plan.warmup_steps,
            "schedule_steps": plan.schedule_steps,
            "batch_size": cfg.batch_size,
            "grad_accum": cfg.grad_accum,
            "lr": cfg.lr,
            "dataset_len": len(self.dataset),  # type: ignore[arg-type]
        }
        if cfg.loss != "l1":  # absent in checkpoints written before the option existed
            fingerprint["loss"] = cfg.loss
        return fingerprint

    def _resume_or_seed(self, run: _Round, model: nn.Module) -> TrainState:
        """The round's checkpoint loaded into model, optimizer and RNGs, or a fresh start with seeded RNGs."""
        ctx = run.ctx
        state = resume_round(run.ckpt_dir, model, run.optimizer, run.scaler, run.fingerprint)
        if state is None:
            if self.config.seed_global_rngs:
                # Rank 0 seeds as a single process does; other ranks draw their own streams (e.g. dropout).
                seed_global_rngs(derive_seed(run.seed, ctx.round, 0, *([ddp.rank()] if ddp.rank() else [])))
            return TrainState(
                round=ctx.round, step=0, loss_sum=0.0, loss_count=0, seconds=0.0, fingerprint=run.fingerprint
            )
        run.saved_step = state.step
        ctx.steps_done = max(ctx.steps_done, state.step)
        if state.round_state is not None:
            ctx.load_state_dict(state.round_state)
        if ctx.round == 0 and ctx.rewind_step is not None and state.step >= ctx.rewind_step and not ctx.rewind_marked:
            # The snapshot was taken before the interruption; only the caller can have kept it.
            log.warning(
                "resumed at step %d, past the rewind step %d: the rewind snapshot must come from the run's own record",
                state.step,
                ctx.rewind_step,
            )
        return state

    def _epoch(self, run: _Round, epoch: int, steps_done: int) -> DataLoader:
        """The loader of ``epoch``'s micro-batches, less those of its first ``steps_done`` steps (a resume)."""
        return self._loader(run.seed, run.ctx.round, epoch, steps_done * self.config.grad_accum, run.device)

    def _loader(self, base_seed: int, round_: int, epoch: int, skip: int, device: torch.device) -> DataLoader:
        """Micro-batches of one epoch, in an order fixed by (seed, round, epoch), minus the first ``skip``."""
        cfg = self.config
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        micro = self._plan().steps_per_epoch * cfg.grad_accum
        world, _ = self.batch_split()
        batches = epoch_batches(len(self.dataset), base_seed, round_, epoch, micro, cfg.batch_size, world, ddp.rank())  # type: ignore[arg-type]
        return epoch_loader(self.dataset, batches[skip:], base_seed, round_, epoch, cfg.num_workers, device)

    def _optimizer_step(self, run: _Round, model: nn.Module, batches: Iterator[Any], lr: float, step: int) -> float:
        """Forward and backward ``grad_accum`` micro-batches, then one optimizer step; returns the step's loss."""
        cfg, optimizer, scaler = self.config, run.optimizer, run.scaler
        loss_fn = LOSSES[cfg.loss]
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_loss = 0.0
        for micro in range(cfg.grad_accum):
            inputs, targets = unpack_batch(next(batches), run.device)
            # DDP averages gradients over ranks only at the last micro-batch of a step.
            sync = run.net.no_sync() if run.world > 1 and micro < cfg.grad_accum - 1 else contextlib.nullcontext()  # type: ignore[operator]
            with sync:
                with run.autocast:
                    restored = run.net(inputs)
                loss = loss_fn(restored.float(), targets.float())
                # The mean over ranks: the loss of the global batch, and one verdict on finiteness.
                value = (ddp.all_reduce_sum(loss.detach().float()) / run.world).item() if run.world > 1 else loss.item()
                if not math.isfinite(value):
                    optimizer.zero_grad(set_to_none=True)
                    raise NonFiniteLossError(step + 1, lr, value, run.ctx.round, run.ckpt_dir, run.saved_step)
                scaled = loss / cfg.grad_accum
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
            step_loss += value / cfg.grad_accum
        if cfg.clip_grad is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return step_loss

    def _report(self, run: _Round, state: TrainState, epoch: int, step_loss: float, lr: float) -> None:
        """Tell the progress callback (rank 0 only) about the step just taken."""
        if self.progress is None or not ddp.is_main():
            return
        elapsed = time.perf_counter() - run.started
        rate = (state.step - run.start_step) / elapsed if elapsed > 0 else 0.0
        total = run.plan.total_steps
        self.progress(
            TrainProgress(
                round=run.ctx.round,
                step=state.step,
                total_steps=total,
                epoch=epoch,
                loss=step_loss,
                mean_loss=state.loss_sum / state.loss_count,
                lr=lr,
                steps_per_sec=rate,
                eta_seconds=(total - state.step) / rate if rate > 0 else math.inf,
            )
        )

    def _stop_requested(self, run: _Round) -> bool:
        """Whether ``should_stop`` asks to stop; under torchrun, whether any rank's does."""
        should_stop = self.config.should_stop
        if should_stop is None:
            return False
        stop = should_stop()
        if run.world > 1:  # one rank asked to stop (e.g. its Ctrl-C came a step early): all stop here
            stop = bool(ddp.all_reduce_sum(torch.tensor([float(stop)], device=run.device)).item())
        return stop

    def _checkpoint_due(self, run: _Round, step: int, stop: bool) -> bool:
        """Every ``checkpoint_every`` steps, on a stop and at the round's end, when there is a directory."""
        every = self.config.checkpoint_every
        due = every is not None and step % every == 0
        return run.ckpt_dir is not None and (due or stop or step == run.plan.total_steps)

    def _save_checkpoint(self, run: _Round, model: nn.Module, state: TrainState, lr: float) -> None:
        """Write the resume checkpoint of ``state.step`` (rank 0 writes; every rank sends its RNG states).

        Weights that became NaN or infinite are never written (the replicas agree, so every rank raises):
        a checkpoint found holding them later was damaged on disk, not by training.
        """
        assert run.ckpt_dir is not None
        if bad := nonfinite(model.state_dict()):
            raise NonFiniteLossError(state.step, lr, state.last_loss, run.ctx.round, run.ckpt_dir, run.saved_step, bad)
        state.seconds = run.prior_seconds + time.perf_counter() - run.started
        state.round_state = run.ctx.state_dict()
        optim_state: dict[str, Any] = {"optimizer": run.optimizer.state_dict()}
        if run.scaler is not None:
            optim_state["scaler"] = run.scaler.state_dict()
        if run.world > 1:
            optim_state["rng_ranks"] = ddp.all_gather_object(capture_rng())
        if ddp.is_main():
            save_resume_state(run.ckpt_dir, state, model, optim_state)
        run.saved_step = state.step
        log.debug("round %d: checkpoint at step %d in %s", run.ctx.round, state.step, run.ckpt_dir)

    def _amp_dtype(self, device: torch.device) -> torch.dtype | None:
        amp = self.config.amp
        if amp is None:
            return None
        if device.type != "cuda":
            log.warning("amp=%r needs CUDA; training in float32 on %s", amp, device)
            return None
        return torch.bfloat16 if amp == "bf16" else torch.float16
