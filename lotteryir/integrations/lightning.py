"""Lightning: :class:`~lotteryir.pruning.IterativeMagnitudePruner` drives your LightningModule and Trainer.

Each round is one ``Trainer.fit`` of a Trainer that your function builds, so callbacks, loggers,
precision, gradient clipping, accumulation and strategy (``ddp`` included) stay yours::

    from lotteryir.integrations.lightning import lightning_closure

    def make_trainer(ctx):  # a fresh Trainer every round; ctx.round says which
        return L.Trainer(max_steps=2000, gradient_clip_val=0.5, precision="bf16-mixed")

    pruner = IterativeMagnitudePruner(lit_module, lightning_closure(make_trainer, datamodule=dm),
                                      rate=0.2, rounds=10, rewind="step:500")
    pruner.run()

Create the pruner on the LightningModule itself, before the first fit: it attaches the masks
(``torch.nn.utils.prune`` form: ``<w>_orig`` trained, ``<w>_mask`` a buffer, a forward pre-hook
computing ``w = w_orig * w_mask``), and ``configure_optimizers`` runs inside every fit, so the
optimizer always holds ``w_orig``. Whatever the optimizer, clipping or precision do to ``w_orig``,
the weights the network computes with stay exactly zero where the mask is.

:class:`PruningCallback` (added to every Trainer by the closure) reports each step of the Trainer's
``global_step`` to the round's :class:`~lotteryir.pruning.RoundContext`: ``rewind="step:K"`` snapshots
at the end of the batch after which ``global_step`` is K (Lightning's count, the one ``max_steps``
uses: optimizer steps, not batches, under gradient accumulation; every ``optimizer.step()`` of every
optimizer under manual optimization). A K that one batch steps over (two optimizers stepping in one
batch) is snapshot at that batch's end, recorded as the step it is, with a warning. It carries
``ctx.state_dict()`` inside Lightning's checkpoints (plain lists and numbers: they load with
``weights_only=True``), refuses a checkpoint of another round or with other masks, and under
torch.distributed keeps the masks out of DDP's broadcasts and checks that all ranks agree.

The pruner holds the LightningModule, so its state dicts carry the module's prefix (``net.``):
:func:`inner_state_dict` gives the keys of the network inside. Compile in place
(``module.net.compile()``); a ``torch.compile`` wrapper is refused. Build each round's logger in
``make_trainer`` (every fit counts from step 0): ``version=f"round{ctx.round}-{ctx.kind}"``.

Needs ``pip install lotteryir[lightning]`` (Lightning and TensorBoard); ``import lotteryir`` never imports Lightning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

try:
    import lightning.pytorch as pl
except ImportError as exc:  # an optional extra: say how to get it
    raise ImportError(
        f"lotteryir.integrations.lightning needs Lightning, which could not be imported ({exc}). "
        "Install it with: pip install lotteryir[lightning]"
    ) from exc

from lotteryir.integrations._lightning_checks import (
    marks_skipped,
    missing_hooks,
    refuse_compiled,
    warn_inside_batch,
    warn_shared_loggers,
)
from lotteryir.pruning import distributed
from lotteryir.pruning.bridge import export_state_dict
from lotteryir.pruning.context import RoundContext
from lotteryir.pruning.mask import MASK_SUFFIX, Mask
from lotteryir.pruning.rewind import named_tensors

__all__ = ["LightningClosure", "PruningCallback", "inner_state_dict", "lightning_closure", "module_mask"]

log = logging.getLogger(__name__)

TrainerFactory = Callable[[RoundContext], "pl.Trainer"]
CkptPath = Callable[[RoundContext], "str | Path | None"]
STATE_FORMAT = 1
# Lightning loads a checkpoint's weights before its callbacks' state, so a refusal comes after them.
_OVERWRITTEN = "The module now holds that checkpoint's weights and masks: build it and the pruner again"


def module_mask(module: nn.Module) -> Mask:
    """The pruning masks attached under ``module`` (``torch.nn.utils.prune`` form), by unpruned name."""
    buffers = dict(module.named_buffers(remove_duplicate=False))
    return Mask({n[: -len(MASK_SUFFIX)]: buffers[n] for n in distributed.mask_buffer_names(module) if n in buffers})


def inner_state_dict(module: nn.Module, submodule: str) -> dict[str, torch.Tensor]:
    """The plain state dict of the network ``module.<submodule>`` (e.g. ``"net"``), keys without that prefix.

    Pruned entries are zeros and no ``_orig``/``_mask`` key is left, so it loads strictly into the
    network as its project publishes it; ``pruner.export_state_dict()`` keeps the LightningModule's keys.
    """
    try:
        inner = module.get_submodule(submodule)
    except AttributeError:
        children = ", ".join(name for name, _ in module.named_children()) or "none"
        raise ValueError(f"{type(module).__name__} has no submodule {submodule!r} (its children: {children})") from None
    refuse_compiled(inner, f"{type(module).__name__}.{submodule}")
    return export_state_dict(inner)


def _step_metrics(trainer: pl.Trainer, outputs: Any) -> dict[str, float]:
    """The loss ``training_step`` returned and the first optimizer's learning rate, for ``on_step``."""
    metrics: dict[str, float] = {}
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        metrics["loss"] = float(loss.detach())
    optimizers = getattr(trainer, "optimizers", None)
    if optimizers:
        metrics["lr"] = float(optimizers[0].param_groups[0]["lr"])
    return metrics


class PruningCallback(pl.Callback):
    """Connects one round's ``Trainer.fit`` to the pruner's :class:`RoundContext`.

    :class:`LightningClosure` adds it to each round's Trainer; add it yourself only when you call
    ``trainer.fit`` in your own closure (``PruningCallback(ctx, model)``).
    """

    def __init__(self, ctx: RoundContext, model: nn.Module | None = None, resuming: bool = False) -> None:
        if model is not None:
            refuse_compiled(model, "the pruner's model")
        self.ctx, self.model, self.resuming = ctx, model, resuming
        self.reported = 0  # optimizer steps of this round already reported through ctx.step
        self.restored: dict[str, Any] | None = None  # this callback's state from a resumed checkpoint
        self._names: list[str] = []
        self._checksum: torch.Tensor | None = None

    @property
    def state_key(self) -> str:
        return "lotteryir.PruningCallback"

    # -- before training: DDP, ranks, what a checkpoint must not change ------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        refuse_compiled(pl_module, f"round {self.ctx.round}: the LightningModule")
        # Lightning wraps this module in DDP; names on its ignore list are relative to it.
        self._names = distributed.ddp_ignore_masks(pl_module)
        mask = module_mask(pl_module)
        self._checksum = distributed.mask_checksum(mask).cpu()
        if distributed.active():  # the group exists from here on (Lightning starts it inside fit)
            if self.ctx.round == 0 and self.ctx.kind == "ticket" and not self.resuming:
                distributed.verify_weights_agree(named_tensors(pl_module))
            distributed.verify_masks_agree(mask, self.ctx.round, what=f"round {self.ctx.round} (Lightning)")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ctx, where = self.ctx, f"round {self.ctx.round}"
        if self.model is not None and pl_module is not self.model:
            raise RuntimeError(f"{where}: the Trainer trains another module than the pruner's (a copy?)")
        names = distributed.mask_buffer_names(pl_module)
        lost = missing_hooks(pl_module)
        if names != self._names or lost:
            strategy = type(trainer.strategy).__name__
            raise RuntimeError(
                f"{where}: the pruning masks did not survive {strategy}'s setup "
                f"({', '.join(lost[:3]) or 'the masked tensors changed'}); strategies that rebuild or shard "
                "parameters (FSDP, DeepSpeed) are not supported: use ddp or a single device"
            )
        if self.resuming or trainer.ckpt_path is not None:
            self._check_resumed(trainer, pl_module)
        ddp = trainer.strategy.model
        ignored = getattr(ddp, "parameters_to_ignore", None)
        if isinstance(ddp, nn.parallel.DistributedDataParallel) and ignored is not None:
            left = [n for n in names if n not in ignored]
            if left:
                raise RuntimeError(f"{where}: DDP would broadcast the masks {', '.join(left[:3])}")
        self.reported = trainer.global_step
        ctx.steps_done = max(ctx.steps_done, self.reported)

    def _check_resumed(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path, ctx = trainer.ckpt_path, self.ctx
        if self.restored is None:
            raise ValueError(
                f"round {ctx.round}: checkpoint {path} holds no lotteryir state; resume only from checkpoints "
                "saved by a Trainer that lightning_closure ran (its PruningCallback saves the round's state). "
                + _OVERWRITTEN
            )
        before = self._checksum if self._checksum is not None else torch.zeros(0)
        if not torch.equal(distributed.mask_checksum(module_mask(pl_module)).cpu(), before):
            raise ValueError(
                f"round {ctx.round}: checkpoint {path} holds other masks than the pruner's (density "
                f"{ctx.density:.4f}); it belongs to another run. {_OVERWRITTEN}"
            )
        step = trainer.global_step
        if ctx.round == 0 and ctx.rewind_step is not None and step >= ctx.rewind_step and not ctx.rewind_marked:
            log.warning(
                "round 0 resumed at step %d, past the rewind step %d: the rewind snapshot must come from the "
                "run's own record (on_rewind_point, IterativeMagnitudePruner.save_state)",
                step,
                ctx.rewind_step,
            )

    # -- during training -----------------------------------------------------------------------
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # global_step is Lightning's count of optimizer steps: it moves every N batches under gradient
        # accumulation, and by every optimizer.step() of every optimizer under manual optimization.
        before, now, ctx = self.reported, trainer.global_step, self.ctx
        if now <= before:
            return
        # Weights exist between batches only: a rewind step passed inside this batch cannot be snapshot.
        targets = {ctx.rewind_step, *ctx.rewind_steps} if ctx.round == 0 else set()
        inside = sorted(k for k in targets if k is not None and before < k < now)
        if inside:
            warn_inside_batch(inside, before, now, ctx)
        metrics = _step_metrics(trainer, outputs)
        with marks_skipped(ctx, inside):
            for k in range(before + 1, now):
                self.reported = k
                ctx.step(k, **metrics)
        if ctx.rewind_step in inside:
            ctx.mark_rewind_point(now)  # the weights after this batch, recorded as the step they are
        self.reported = now
        ctx.step(now, **metrics)

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        ctx = self.ctx
        # Plain values only: Lightning checkpoints must load with torch.load(weights_only=True).
        return {
            "format": STATE_FORMAT,
            "round": ctx.round,
            "kind": ctx.kind,
            "density": float(ctx.density),
            "step": self.reported,
            "round_state": dict(ctx.state_dict()),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        ctx = self.ctx
        saved = (state_dict.get("round"), state_dict.get("kind"))
        if saved != (ctx.round, ctx.kind):
            raise ValueError(
                f"the checkpoint was saved in round {saved[0]} ({saved[1]}) and cannot resume round {ctx.round} "
                f"({ctx.kind}): ckpt_path must name a checkpoint of the round being resumed, or None. {_OVERWRITTEN}"
            )
        self.restored = dict(state_dict)
        ctx.load_state_dict(state_dict.get("round_state") or {})


def _metrics(trainer: pl.Trainer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in trainer.callback_metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
        elif isinstance(value, (int, float)):
            out[key] = float(value)
    out.update(steps=int(trainer.global_step), epochs=int(trainer.current_epoch))
    return out


class LightningClosure:
    """The training closure of one ``Trainer.fit`` per round (see :func:`lightning_closure`)."""

    def __init__(
        self,
        make_trainer: TrainerFactory,
        *,
        datamodule: pl.LightningDataModule | None = None,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        ckpt_path: CkptPath | None = None,
        weights_only: bool | None = None,
    ) -> None:
        if not callable(make_trainer):
            raise TypeError("make_trainer must be a function ctx -> lightning.pytorch.Trainer")
        if ckpt_path is not None and not callable(ckpt_path):
            raise TypeError(
                "ckpt_path must be a function ctx -> path or None (which round a checkpoint resumes is "
                f"decided per round), got {ckpt_path!r}"
            )
        self.make_trainer, self.ckpt_path, self.weights_only = make_trainer, ckpt_path, weights_only
        self.fit_kwargs: dict[str, Any] = {
            "datamodule": datamodule,
            "train_dataloaders": train_dataloaders,
            "val_dataloaders": val_dataloaders,
        }
        self.trainer: pl.Trainer | None = None  # the last round's Trainer (its checkpoints, logs, ...)

    def __call__(self, model: nn.Module, ctx: RoundContext, /) -> dict[str, Any]:
        refuse_compiled(model, "the pruner's model")
        if not isinstance(model, pl.LightningModule):
            raise TypeError(
                f"the pruner's model is a {type(model).__name__}; create IterativeMagnitudePruner on the "
                "LightningModule itself (include=/exclude= choose the tensors)"
            )
        trainer = self.make_trainer(ctx)
        if not isinstance(trainer, pl.Trainer):
            raise TypeError(
                f"make_trainer returned {type(trainer).__name__}, expected a lightning.pytorch.Trainer "
                "(Trainers of the separate pytorch_lightning package are not supported)"
            )
        if trainer is self.trainer:
            raise ValueError("make_trainer returned the previous round's Trainer; build a new one every round")
        warn_shared_loggers(trainer.loggers, self.trainer.loggers if self.trainer is not None else [])
        self.trainer = trainer
        path = self.ckpt_path(ctx) if self.ckpt_path is not None else None
        # Trainer.callbacks is set by Lightning's callback connector, unannotated on the class.
        trainer.callbacks.insert(0, PruningCallback(ctx, model, resuming=path is not None))  # type: ignore[attr-defined]
        kwargs = {k: v for k, v in self.fit_kwargs.items() if v is not None}
        if self.weights_only is not None:
            kwargs["weights_only"] = self.weights_only
        trainer.fit(model, ckpt_path=str(path) if path is not None else None, **kwargs)
        if trainer.interrupted:
            # A fit that returns unfinished (Lightning itself exits on Ctrl-C) must not become a round record.
            raise RuntimeError(f"round {ctx.round}: Trainer.fit was interrupted; resume it from its checkpoint")
        return _metrics(trainer)


def lightning_closure(
    make_trainer: TrainerFactory,
    *,
    datamodule: pl.LightningDataModule | None = None,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    ckpt_path: CkptPath | None = None,
    weights_only: bool | None = None,
) -> LightningClosure:
    """A training closure that runs each round as ``make_trainer(ctx).fit(model, ...)``.

    ``make_trainer(ctx)`` builds a new Trainer every round (``ctx.round``, ``ctx.density`` and
    ``ctx.kind`` tell which; per-round checkpoint folders and logger versions are a good idea: a logger
    passed to every round would draw each fit from step 0 over the last, and warns). The data comes from
    ``datamodule`` / ``train_dataloaders`` / ``val_dataloaders``, or from the module's own
    ``*_dataloader`` hooks. ``ckpt_path(ctx)`` may name a Lightning checkpoint of the round being
    resumed (``None``: start it fresh); it is loaded strictly into the masked module, whose
    ``<w>_orig``/``<w>_mask`` keys it holds. The closure returns the Trainer's scalar
    ``callback_metrics`` plus ``steps`` and ``epochs``; the last Trainer is kept as ``.trainer``.
    """
    return LightningClosure(
        make_trainer,
        datamodule=datamodule,
        train_dataloaders=train_dataloaders,
        val_dataloaders=val_dataloaders,
        ckpt_path=ckpt_path,
        weights_only=weights_only,
    )
