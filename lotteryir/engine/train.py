"""The default training closure: L1 loss, AdamW, linear warm-up then cosine, restarted every round."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lotteryir.engine import distributed as ddp
from lotteryir.engine.device import pick_device
from lotteryir.engine.resume import (
    TrainState,
    capture_rng,
    load_resume_state,
    peek_state,
    restore_rng,
    save_resume_state,
)
from lotteryir.engine.threads import ThreadChoice, apply_threads, resolve_threads

if TYPE_CHECKING:  # the closure boundary is the only contact with the pruner, and only as a type
    from lotteryir.pruning.context import RoundContext

__all__ = [
    "TrainConfig",
    "TrainProgress",
    "RestorationTrainer",
    "NonFiniteLossError",
    "TrainingStopped",
    "lr_at",
]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """How one round trains. Defaults follow the MIR-L paper / PromptIR code."""

    # Round length: give epochs or optimizer steps; neither means the paper's 120 epochs.
    epochs: int | None = None
    steps: int | None = None
    # The global batch: under torchrun each of N processes trains on batch_size / N of every batch.
    batch_size: int = 8
    lr: float = 2e-4
    # PromptIR builds AdamW(params, lr=2e-4) and nothing else, i.e. torch's default decay of 0.01.
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    # Linear warm-up length, first match wins: steps, epochs, fraction of the round (paper: 15 of 120 epochs).
    warmup_steps: int | None = None
    warmup_epochs: float | None = None
    warmup_fraction: float = 15 / 120
    # The cosine reaches 0 at schedule_horizon x the round's length. PromptIR's code trains 120
    # epochs of a 150-epoch LinearWarmupCosineAnnealingLR, i.e. 1.25, ending near lr/9, not 0.
    schedule_horizon: float = 1.0
    grad_accum: int = 1
    # "l1": the paper's loss. "psnr": the mean over images of -PSNR(restored, target) (NAFNet's PSNR
    # loss), which weighs every image by its own error, so mild degradations (JPEG, light rain) are
    # not drowned out by heavy ones (haze) when tasks are mixed in one batch.
    loss: str = "l1"
    clip_grad: float | None = None
    amp: str | None = None  # None, "bf16" or "fp16"; CUDA only, ignored with a warning on CPU
    device: str | torch.device | None = None  # None: CUDA when present, else CPU
    # Intra-op CPU threads: "auto" uses the cores that are idle when the first round starts
    # (OMP_NUM_THREADS wins if set), an int fixes the count, None leaves torch's setting alone.
    threads: int | str | None = "auto"
    num_workers: int = 0
    # DistributedDataParallel only: look for parameters without a gradient after each backward. The
    # published PromptIR (MIR-L) has six such layers and trains with it on; False is a little faster.
    find_unused_parameters: bool = True
    checkpoint_every: int | None = 500  # optimizer steps between mid-round checkpoints
    seed: int | None = None  # None: use the pruner's ctx.seed
    # Seeding torch/NumPy/Python global RNGs makes dropout and dataset augmentations repeatable too.
    seed_global_rngs: bool = True
    # Polled after every optimizer step (a threading.Event's is_set works): checkpoint, then raise TrainingStopped.
    should_stop: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and self.steps is not None:
            raise ValueError(f"give epochs or steps, not both (epochs={self.epochs}, steps={self.steps})")
        for name in ("epochs", "steps", "batch_size", "grad_accum", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"TrainConfig.{name} must be at least 1; got {value}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a finite number > 0; got {self.lr}")
        if self.threads is not None and not (
            self.threads == "auto" or (type(self.threads) is int and self.threads >= 1)
        ):
            raise ValueError(f"TrainConfig.threads must be 'auto', a positive int or None; got {self.threads!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {', '.join(LOSSES)}; got {self.loss!r}")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"TrainConfig.amp must be None, 'bf16' or 'fp16'; got {self.amp!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"TrainConfig.warmup_fraction must be in [0, 1); got {self.warmup_fraction}")
        if self.schedule_horizon < 1:
            raise ValueError(f"TrainConfig.schedule_horizon must be at least 1; got {self.schedule_horizon}")


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


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the model still holds the weights of the last good step."""

    def __init__(
        self, step: int, lr: float, loss: float, round: int, checkpoint: Path | None, checkpoint_step: int | None
    ):
        self.step, self.lr, self.loss, self.round = step, lr, loss, round
        where = (
            f"the last good checkpoint (step {checkpoint_step}) in {checkpoint} is intact"
            if checkpoint is not None and checkpoint_step is not None
            else "no checkpoint was written"
        )
        super().__init__(
            f"non-finite loss ({loss}) at step {step} of round {round} with learning rate {lr:.3g}; {where}. "
            "Try a lower lr, clip_grad, or amp='bf16' instead of 'fp16'."
        )


class TrainingStopped(RuntimeError):
    """Training stopped on request (``should_stop``); the round can resume from its checkpoint."""

    def __init__(self, step: int, checkpoint: Path | None):
        self.step, self.checkpoint = step, checkpoint
        saved = f"checkpoint written to {checkpoint}" if checkpoint is not None else "no checkpoint_dir, nothing saved"
        super().__init__(f"training stopped on request after step {step}; {saved}")


def psnr_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -PSNR in dB (pixel range 1), a differentiable training loss.

    The floor of 1e-5 on each image's mean squared error (50 dB) keeps flat patches, whose
    error can approach 0, from taking unbounded weight.
    """
    mse = (restored - target).pow(2).flatten(1).mean(dim=1)
    return (10.0 / math.log(10.0)) * torch.log(mse + 1e-5).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"l1": F.l1_loss, "psnr": psnr_loss}


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Learning rate for 0-based optimizer step ``step``: linear warm-up to ``base``, then cosine to 0 at ``total``.

    Per step, not per epoch as in PromptIR's LinearWarmupCosineAnnealingLR, and
    warm-up starts at base/warmup rather than 0 so no step is wasted at lr 0.
    """
    if step < warmup:
        return base * (step + 1) / warmup
    if total <= warmup:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers, so (seed, round, epoch) streams never collide."""
    words = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts] + [len(parts)]).generate_state(2)
    return ((int(words[0]) << 32) | int(words[1])) & (2**63 - 1)


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

    @property
    def threads(self) -> ThreadChoice | None:
        """The intra-op thread count this trainer uses (chosen once, at first use), None if torch's own."""
        if self._threads is None and self.config.threads is not None:
            # Decided once and kept: a different count changes results in the last bits.
            self._threads = resolve_threads(self.config.threads)
        return self._threads

    def plan(self) -> tuple[int, int, int]:
        """(optimizer steps per epoch, total steps, warm-up steps) for this dataset and config."""
        cfg = self.config
        per_epoch = (len(self.dataset) // cfg.batch_size) // cfg.grad_accum  # type: ignore[arg-type]
        if per_epoch < 1:
            raise ValueError(
                f"dataset of {len(self.dataset)} items is too small for batch_size={cfg.batch_size} "  # type: ignore[arg-type]
                f"x grad_accum={cfg.grad_accum}"
            )
        total = cfg.steps if cfg.steps is not None else (cfg.epochs or 120) * per_epoch
        if cfg.warmup_steps is not None:
            warmup = cfg.warmup_steps
        elif cfg.warmup_epochs is not None:
            warmup = round(cfg.warmup_epochs * per_epoch)
        else:
            warmup = round(cfg.warmup_fraction * total)
        return per_epoch, total, min(warmup, total)

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
        cfg = self.config
        per_epoch, total, warmup = self.plan()
        world, _ = self.batch_split()
        main = ddp.is_main()
        horizon = max(total, round(cfg.schedule_horizon * total))
        loss_fn = LOSSES[cfg.loss]
        device = pick_device(cfg.device)
        amp_dtype = self._amp_dtype(device)
        base_seed = cfg.seed if cfg.seed is not None else ctx.seed
        ckpt_dir = Path(ctx.checkpoint_dir) if ctx.checkpoint_dir is not None else None
        fingerprint = {
            "round": ctx.round,
            "seed": base_seed,
            "total_steps": total,
            "steps_per_epoch": per_epoch,
            "warmup_steps": warmup,
            "schedule_steps": horizon,
            "batch_size": cfg.batch_size,
            "grad_accum": cfg.grad_accum,
            "lr": cfg.lr,
            "dataset_len": len(self.dataset),  # type: ignore[arg-type]
        }
        if cfg.loss != "l1":  # absent in checkpoints written before the option existed
            fingerprint["loss"] = cfg.loss

        if device.type == "cpu":
            apply_threads(self.threads)
        model.to(device)
        model.train()
        net = ddp.ddp_wrap(model, device, find_unused_parameters=cfg.find_unused_parameters)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=cfg.lr,
            betas=cfg.betas,
            weight_decay=cfg.weight_decay,
        )
        scaler = torch.amp.GradScaler("cuda") if amp_dtype is torch.float16 else None
        state = TrainState(round=ctx.round, step=0, loss_sum=0.0, loss_count=0, seconds=0.0, fingerprint=fingerprint)
        resumed = self._try_resume(ckpt_dir, model, optimizer, scaler, fingerprint)
        if resumed is not None:
            state = resumed
            ctx.steps_done = max(ctx.steps_done, state.step)
            if state.round_state is not None:
                ctx.load_state_dict(state.round_state)
            if (
                ctx.round == 0
                and ctx.rewind_step is not None
                and state.step >= ctx.rewind_step
                and not ctx.rewind_marked
            ):
                # The snapshot was taken before the interruption; only the caller can have kept it.
                log.warning(
                    "resumed at step %d, past the rewind step %d: the rewind snapshot must come from the run's own "
                    "record",
                    state.step,
                    ctx.rewind_step,
                )
        elif cfg.seed_global_rngs:
            # Rank 0 seeds as a single process does; other ranks draw their own streams (e.g. dropout).
            self._seed_globals(derive_seed(base_seed, ctx.round, 0, *([ddp.rank()] if ddp.rank() else [])))
        # Nobody may write the next checkpoint (and delete this one) before every rank has read it.
        ddp.barrier()
        resumed_from = state.step
        saved_step = state.step if resumed is not None else None

        start_time, start_step, prior_seconds = time.perf_counter(), state.step, state.seconds
        lr = lr_at(max(state.step - 1, 0), horizon, warmup, cfg.lr)
        autocast = (
            torch.autocast(device_type=device.type, dtype=amp_dtype)
            if amp_dtype is not None
            else contextlib.nullcontext()
        )
        while state.step < total:
            epoch = state.step // per_epoch
            batches = iter(self._loader(base_seed, ctx.round, epoch, (state.step % per_epoch) * cfg.grad_accum, device))
            for _ in range(per_epoch - state.step % per_epoch):
                if state.step >= total:
                    break
                lr = lr_at(state.step, horizon, warmup, cfg.lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                step_loss = 0.0
                for micro in range(cfg.grad_accum):
                    inputs, targets = _unpack(next(batches), device)
                    # DDP averages gradients over ranks only at the last micro-batch of a step.
                    sync = net.no_sync() if world > 1 and micro < cfg.grad_accum - 1 else contextlib.nullcontext()
                    with sync:
                        with autocast:
                            restored = net(inputs)
                        loss = loss_fn(restored.float(), targets.float())
                        # The mean over ranks: the loss of the global batch, and one verdict on finiteness.
                        value = (ddp.all_reduce_sum(loss.detach().float()) / world).item() if world > 1 else loss.item()
                        if not math.isfinite(value):
                            optimizer.zero_grad(set_to_none=True)
                            raise NonFiniteLossError(state.step + 1, lr, value, ctx.round, ckpt_dir, saved_step)
                        scaled = loss / cfg.grad_accum
                        (scaler.scale(scaled) if scaler is not None else scaled).backward()
                    step_loss += value / cfg.grad_accum
                self._optimizer_step(model, optimizer, scaler)
                state.step += 1
                state.loss_sum += step_loss
                state.last_loss = step_loss
                state.loss_count += 1
                ctx.step(state.step)

                elapsed = time.perf_counter() - start_time
                rate = (state.step - start_step) / elapsed if elapsed > 0 else 0.0
                if self.progress is not None and main:
                    self.progress(
                        TrainProgress(
                            round=ctx.round,
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
                stop = cfg.should_stop is not None and cfg.should_stop()
                if (
                    world > 1 and cfg.should_stop is not None
                ):  # one rank asked to stop (e.g. its Ctrl-C came a step early): all stop here
                    stop = bool(ddp.all_reduce_sum(torch.tensor([float(stop)], device=device)).item())
                due = cfg.checkpoint_every is not None and state.step % cfg.checkpoint_every == 0
                if ckpt_dir is not None and (due or stop or state.step == total):
                    state.seconds = prior_seconds + time.perf_counter() - start_time
                    state.round_state = ctx.state_dict()
                    optim_state = self._optim_state(optimizer, scaler)
                    if world > 1:
                        optim_state["rng_ranks"] = ddp.all_gather_object(capture_rng())
                    if main:
                        save_resume_state(ckpt_dir, state, model, optim_state)
                    saved_step = state.step
                    log.debug("round %d: checkpoint at step %d in %s", ctx.round, state.step, ckpt_dir)
                if stop and state.step < total:
                    raise TrainingStopped(state.step, ckpt_dir)

        seconds = prior_seconds + time.perf_counter() - start_time
        return {
            "loss": state.loss_sum / state.loss_count if state.loss_count else math.nan,
            "loss_last": state.last_loss,
            "steps": state.step,
            "seconds": seconds,
            "lr_final": lr,
            "resumed_from": resumed_from,
        }

    def _amp_dtype(self, device: torch.device) -> torch.dtype | None:
        amp = self.config.amp
        if amp is None:
            return None
        if device.type != "cuda":
            log.warning("amp=%r needs CUDA; training in float32 on %s", amp, device)
            return None
        return torch.bfloat16 if amp == "bf16" else torch.float16

    def _optimizer_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any) -> None:
        if self.config.clip_grad is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def _optim_state(optimizer: torch.optim.Optimizer, scaler: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"optimizer": optimizer.state_dict()}
        if scaler is not None:
            out["scaler"] = scaler.state_dict()
        return out

    def _try_resume(
        self,
        ckpt_dir: Path | None,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: Any,
        fingerprint: dict[str, Any],
    ) -> TrainState | None:
        if ckpt_dir is None:
            return None
        record = peek_state(ckpt_dir)
        if record is None:
            return None
        if record["fingerprint"].get("round") != fingerprint["round"]:
            # A finished checkpoint of an earlier round sharing the directory: not ours to resume.
            log.info("ignoring checkpoint of round %s in %s", record["fingerprint"].get("round"), ckpt_dir)
            return None
        changed = {
            k: (record["fingerprint"].get(k), v) for k, v in fingerprint.items() if record["fingerprint"].get(k) != v
        }
        if changed:
            detail = ", ".join(f"{k}: checkpoint {old!r}, now {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"the training checkpoint in {ckpt_dir} was written with a different setup ({detail}); "
                "restore the original settings or delete the checkpoint to restart the round"
            )
        loaded = load_resume_state(ckpt_dir, model)
        assert loaded is not None
        state, optim_state = loaded
        ranks = optim_state.get("rng_ranks") or []
        if 0 < ddp.rank() < len(ranks):
            restore_rng(*ranks[ddp.rank()])  # load_resume_state restored rank 0's generators
        optimizer.load_state_dict(optim_state["optimizer"])
        if scaler is not None and "scaler" in optim_state:
            scaler.load_state_dict(optim_state["scaler"])
        log.info("round %d: resuming from step %d in %s", state.round, state.step, ckpt_dir)
        return state

    def _seed_globals(self, seed: int) -> None:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)

    def _loader(self, base_seed: int, round_: int, epoch: int, skip: int, device: torch.device) -> DataLoader:
        """Micro-batches of one epoch, in an order fixed by (seed, round, epoch), minus the first ``skip``."""
        cfg = self.config
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        order = torch.randperm(
            len(self.dataset),  # type: ignore[arg-type]
            generator=torch.Generator().manual_seed(derive_seed(base_seed, round_, epoch, 1)),
        )
        per_epoch = self.plan()[0] * cfg.grad_accum
        world, share = self.batch_split()
        me = ddp.rank()
        # Rank r takes columns [r*share, (r+1)*share) of each global batch: the union is the single-process batch.
        batches = order[: per_epoch * cfg.batch_size].view(per_epoch, world, share)[:, me].tolist()[skip:]
        return DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(derive_seed(base_seed, round_, epoch, 2)),
            worker_init_fn=_seed_worker if cfg.num_workers > 0 else None,
            pin_memory=device.type == "cuda",
        )


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; NumPy and random follow from it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _unpack(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        inputs, targets = batch["input"], batch["target"]
    elif isinstance(batch, Sequence) and len(batch) >= 2:
        inputs, targets = batch[0], batch[1]
    else:
        raise TypeError(
            f"training items must be dicts with 'input' and 'target' or (input, target) pairs; got {type(batch)}"
        )
    return inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as JSON-able data (the ``should_stop`` callable is dropped)."""
    data = asdict(config)
    data.pop("should_stop")
    data["device"] = None if config.device is None else str(config.device)
    return data
