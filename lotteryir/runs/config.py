"""What a person asks of a pruning run (:class:`RunConfig`), and how each unset setting is decided.

The decided value is a :class:`~lotteryir.runs.resolved.ResolvedRunConfig`, saved first as ``config.json``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data import DataError, available_recipes
from ..data.options import DEFAULT_NOISE, DEFAULT_WEB, EARLIER_WEB
from ..data.recipes import recipe_tasks
from ..data.tasks import check_tasks
from ..engine.losses import LOSSES
from ..engine.threads import auto_threads, machine_threads
from ..models.external import canonical_name, file_sha256, model_file
from ..models.init import INITS
from ..models.registry import default_size
from ..pruning import MAX_ROUNDS, Rewind, rounds_for_density
from ..pruning.methods import METHODS

# The defaults live in defaults.py (no torch there: `prune --help` reads them); re-exported here.
from .defaults import (  # noqa: F401
    DEFAULT_EPOCHS,
    DEFAULT_INIT,
    DEFAULT_LOSS,
    DEFAULT_PATCH,
    DEFAULT_SIZE,
    FIELD_DEFAULTS,
    NO_RETRAINING_BN_BATCHES,
    PAPER_LR,
    SAMPLE_INIT,
    SAMPLE_LOSS,
    SAMPLE_LR,
    SAMPLE_PATCH,
    SAMPLE_SIZE,
    SAMPLE_STEPS,
    SHIPPED_MODELS,
)
from .methods import check_method, method_settings
from .recipes import open_recipe, recipe_options  # noqa: F401 - re-exported: callers import them from here
from .resolved import GIVEN_THREADS, ResolvedRunConfig, RoundLength

PAPER_PRESET: dict[str, Any] = {
    "size": "full",
    "recipe": "mirl",
    "rounds": 15,
    "rate": 0.2,
    "scope": "global",
    "rewind": "init",
    "epochs": 120,
    "warmup_epochs": 15,
    "lr": PAPER_LR,
    "loss": "l1",
    "init": "default",
    "batch_size": 8,
    "patch_size": 64,
    "tasks": ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"],
}
"""The options ``--preset paper`` sets: the MIR-L paper's full network, schedule and training."""


@dataclass
class RunConfig:
    """What a person asks of a pruning run; None leaves a setting to :meth:`resolved`, which decides it."""

    model: str = FIELD_DEFAULTS.model
    size: str | None = None
    recipe: str = FIELD_DEFAULTS.recipe
    data: str | None = None
    data_paths: dict[str, str] = field(default_factory=dict)
    tasks: list[str] | None = None
    rounds: int | None = None
    target_density: float | None = None
    rate: float = FIELD_DEFAULTS.rate
    scope: str = FIELD_DEFAULTS.scope
    rewind: str | None = None  # None: "from" when the run starts from --from weights, else "init"
    epochs: int | None = None
    steps: int | None = None
    warmup_epochs: float | None = None
    batch_size: int = FIELD_DEFAULTS.batch_size
    patch_size: int | None = None
    lr: float | None = None  # None: SAMPLE_LR on the sample recipe, else the paper's 2e-4
    seed: int = FIELD_DEFAULTS.seed
    controls: list[str] = field(default_factory=list)
    device: str | None = None
    num_workers: int = FIELD_DEFAULTS.num_workers
    checkpoint_every: int = FIELD_DEFAULTS.checkpoint_every
    eval_tile: int | None = None
    preset: str | None = None
    # Intra-op CPU threads: None fixes the count by the machine (the same command gives the same ticket
    # whatever else runs); "auto" takes the cores idle when the run starts; an int is the count.
    threads: int | str | None = None
    loss: str | None = None  # None: SAMPLE_LOSS on the sample recipe, else the paper's "l1"
    # None: SAMPLE_INIT for the shipped networks on the sample recipe, else "default" (as the builder
    # draws it): a user's own network may have no zero-able last convolution.
    init: str | None = None
    # For a network named by file (path/to/nets.py:Net): the SHA-256 of that file when the run started,
    # so a run resumed with a changed file is refused by name rather than silently mixing two networks.
    model_sha256: str | None = None
    # torch.compile the training forward (see engine/compiled.py); how a run trains, not what it finds.
    compile: bool = False
    # How masks evolve (lotteryir.pruning.methods): imp (the default), lr-rewind, oneshot, gmp, early-bird,
    # snip, synflow; its options (--method-option KEY=VALUE) and snip/synflow's shuffled-mask control.
    method: str = FIELD_DEFAULTS.method
    method_options: dict[str, Any] = field(default_factory=dict)
    shuffle_within_layers: bool = False
    # Start from trained weights (any file `lotteryir evaluate` reads): round 0 evaluates them instead of
    # training (dense_round "train" fine-tunes them first); rewinding to them is --rewind from.
    from_weights: str | None = None
    from_weights_sha256: str | None = None  # recorded when the run starts: a resume with other weights is refused
    dense_round: str | None = None  # "train" or "evaluate" (None: evaluate with from_weights, else train)
    # Before every evaluation, recompute BatchNorm running statistics on this many training batches (0: off).
    bn_recalibrate: int | None = None  # None: NO_RETRAINING_BN_BATCHES when no round trains (--steps 0), else 0

    def resolved(self, *, saved: bool = False) -> ResolvedRunConfig:
        """Every setting decided (sample or paper defaults, round counts, threads, method options) and checked.

        ``saved``: this is a stored configuration being read back (:func:`resolved_from_dict`):
        its model file's hash is the one recorded, its preset was applied when it started, and a thread
        count it holds is the run's own.
        """
        return _resolve(self, saved)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ValueError(f"unknown configuration keys: {', '.join(unknown)}")
        # Runs saved before --init existed started as their builder drew them.
        return cls(**{"init": "default", **data})


def resolved_from_dict(data: Mapping[str, Any]) -> ResolvedRunConfig:
    """A stored configuration (``config.json``), as :meth:`ResolvedRunConfig.to_dict` wrote it.

    Runs saved by an earlier version, before a setting was decided at the start, are completed here the
    way that version ran them, so that a resume compares like with like.
    """
    return RunConfig.from_dict(data).resolved(saved=True)


def _resolve(c: RunConfig, saved: bool) -> ResolvedRunConfig:
    """The body of :meth:`RunConfig.resolved`: each default in the order the settings depend on each other."""
    c = dataclasses.replace(
        c,
        data_paths=dict(c.data_paths),
        tasks=list(c.tasks) if c.tasks else None,
        method_options=dict(c.method_options),
    )
    if c.preset is not None:
        if c.preset != "paper":
            raise ValueError(f"unknown preset {c.preset!r}; the only preset is 'paper'")
        if not saved:  # a saved run holds the preset's settings as they were when it started
            for key, value in PAPER_PRESET.items():
                if key == "rounds" and c.method in METHODS and METHODS[c.method].fixed_rounds is not None:
                    continue  # a method that prunes to --target-density at once has no rounds to set
                setattr(c, key, value)
        if not c.data:
            raise ValueError("--preset paper needs the paper's data: give --data ROOT (see `lotteryir recipes`)")
    if not 0.0 < c.rate < 1.0:
        raise ValueError(f"--rate must be in (0, 1) (fraction of the remaining weights pruned per round), got {c.rate}")
    options = check_method(c.method, c.method_options, c.shuffle_within_layers, c.controls)
    rounds = _rounds(c)
    length = _round_length(c)
    start = _start(c, saved, length)
    bn_batches = c.bn_recalibrate
    if bn_batches is None:  # on where it matters most: pruned networks that are never retrained
        bn_batches = NO_RETRAINING_BN_BATCHES if length.count == 0 else 0
    if bn_batches < 0:
        raise ValueError(f"--bn-recalibrate must be 0 (off) or a number of batches, got {bn_batches}")
    for option, value, least in (
        ("--checkpoint-every", c.checkpoint_every, 1),
        ("--num-workers", c.num_workers, 0),
    ):
        if value < least:
            raise ValueError(f"{option} must be at least {least}, got {value}")
    # Paths are resolved once, here: a run means the same data from any working directory.
    data = os.path.abspath(os.path.expanduser(c.data)) if c.data is not None else None
    # A file named as model is stored absolute (the same file from any directory), with its hash.
    model = canonical_name(c.model)
    sha256 = c.model_sha256
    source = model_file(model)
    if not saved and source is not None and source.is_file():
        sha256 = file_sha256(source)
    recipes = [info.name for info in available_recipes()]
    if c.recipe not in recipes:
        raise ValueError(f"--recipe: unknown data recipe {c.recipe!r}; available: {', '.join(recipes)}")
    data_paths = recipe_options(c.recipe, data, c.data_paths)
    tasks = _tasks(c.recipe, data_paths, c.tasks)
    if any(t.startswith("denoise_") for t in tasks):  # the noise protocol is recorded, the default included
        data_paths.setdefault("noise", DEFAULT_NOISE)
    if "web" in tasks:  # so is the web degradation; runs saved before it was named used resize-jpeg
        data_paths.setdefault("web", EARLIER_WEB if saved else DEFAULT_WEB)
    rewind = _rewind(c, start)
    if c.scope not in ("global", "layerwise", "random"):
        raise ValueError(f"--scope must be global, layerwise or random, got {c.scope!r}")
    sample = c.recipe == "sample"
    lr = c.lr if c.lr is not None else (SAMPLE_LR if sample else PAPER_LR)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"--lr must be a finite positive number, got {lr}")
    loss = c.loss if c.loss is not None else (SAMPLE_LOSS if sample else DEFAULT_LOSS)
    if loss not in LOSSES:
        raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    init = c.init if c.init is not None else (SAMPLE_INIT if sample and model in SHIPPED_MODELS else DEFAULT_INIT)
    if init not in INITS:
        raise ValueError(f"--init must be one of {', '.join(INITS)}, got {init!r}")
    if start.path is not None:
        if c.init not in (None, DEFAULT_INIT):
            raise ValueError(f"--init {c.init} draws the first weights, but --from gives them; leave --init out")
        init = DEFAULT_INIT  # drawn, then replaced by the weights given
    patch = c.patch_size if c.patch_size is not None else (SAMPLE_PATCH if sample else DEFAULT_PATCH)
    if c.batch_size < 1 or patch < 8:
        raise ValueError(f"--batch-size must be >= 1 and --patch-size >= 8 (got {c.batch_size}, {patch})")
    threads, threads_reason = _threads(c.threads, saved)
    return ResolvedRunConfig(
        model=model,
        # A model with one size (your own, named package.module:factory) needs no --size.
        size=c.size if c.size is not None else default_size(model, SAMPLE_SIZE if sample else DEFAULT_SIZE),
        recipe=c.recipe,
        data=data,
        data_paths=data_paths,
        tasks=tasks,
        rounds=rounds,
        target_density=c.target_density,
        rate=c.rate,
        scope=c.scope,
        rewind=rewind,
        length=length,
        warmup_epochs=c.warmup_epochs,
        batch_size=c.batch_size,
        patch_size=patch,
        lr=lr,
        seed=c.seed,
        controls=list(c.controls),
        device=c.device if c.device is not None else ("cuda" if torch.cuda.is_available() else "cpu"),
        num_workers=c.num_workers,
        checkpoint_every=c.checkpoint_every,
        eval_tile=c.eval_tile,
        preset=c.preset,
        threads=threads,
        threads_reason=threads_reason,
        loss=loss,
        init=init,
        model_sha256=sha256,
        compile=c.compile,
        method=c.method,
        method_options=method_settings(c.method, options, c.shuffle_within_layers),
        shuffle_within_layers=c.shuffle_within_layers,
        from_weights=start.path,
        from_weights_sha256=start.sha256,
        dense_round=start.dense_round,
        bn_recalibrate=bn_batches,
    )


def _rounds(c: RunConfig) -> int:
    """The pruning rounds: given, or the ones a target density needs, or a method's fixed count."""
    rounds = c.rounds
    fixed = METHODS[c.method].fixed_rounds
    if fixed is not None:  # prunes to the target in one go: the target is the setting, rounds follow
        if c.target_density is None or not 0.0 < c.target_density < 1.0:
            raise ValueError(f"--method {c.method} needs --target-density D in (0, 1) (it prunes to D at once)")
        if rounds is not None and rounds != fixed:
            raise ValueError(f"--method {c.method} takes --target-density, not --rounds")
        rounds = fixed
    elif c.target_density is not None:
        if not 0.0 < c.target_density < 1.0:
            raise ValueError(f"--target-density must be in (0, 1), got {c.target_density}")
        needed = rounds_for_density(c.target_density, c.rate)
        # A stored configuration holds both (reading it back resolves it again); a user gives one.
        if rounds is not None and rounds != needed:
            raise ValueError("give --rounds or --target-density, not both")
        rounds = needed
    if rounds is None:
        raise ValueError("give --rounds N or --target-density D")
    if not 0 <= rounds <= MAX_ROUNDS:
        raise ValueError(f"--rounds must be between 0 and {MAX_ROUNDS}, got {rounds}")
    return rounds


def _round_length(c: RunConfig) -> RoundLength:
    """--steps or --epochs, at least 1 (--steps 0 from trained weights: nothing trains); neither: the
    sample recipe's steps or the paper's epochs."""
    if c.epochs is not None and c.steps is not None:
        raise ValueError("give --epochs or --steps, not both")
    for option, value in (("--epochs", c.epochs), ("--steps", c.steps)):
        if value is not None and value < 1 and not (option == "--steps" and value == 0 and c.from_weights):
            more = " (--steps 0, no training at all, needs --from WEIGHTS)" if option == "--steps" else ""
            raise ValueError(f"{option} must be at least 1{more}, got {value}")
    if c.steps is not None:
        return RoundLength("steps", c.steps)
    if c.epochs is not None:
        return RoundLength("epochs", c.epochs)
    return RoundLength("steps", SAMPLE_STEPS) if c.recipe == "sample" else RoundLength("epochs", DEFAULT_EPOCHS)


@dataclass(frozen=True)
class _Start:
    """Where a run's weights come from: the network's builder, or a file (its path, hash and round 0)."""

    path: str | None
    sha256: str | None
    dense_round: str


def _start(c: RunConfig, saved: bool, length: RoundLength) -> _Start:
    """--from WEIGHTS made absolute with its SHA-256 (the one recorded, for a saved run), and what round 0 does."""
    if c.from_weights is None:
        if c.dense_round not in (None, "train"):
            raise ValueError(
                "--dense-round evaluate needs --from WEIGHTS (a network drawn at random has nothing to show)"
            )
        return _Start(None, None, "train")
    path = os.path.abspath(os.path.expanduser(c.from_weights))
    sha256 = c.from_weights_sha256
    if not saved:
        if not os.path.isfile(path):
            raise ValueError(f"--from: no such file: {path}; give the weights file the network should start from")
        sha256 = file_sha256(Path(path))
    searches = not METHODS[c.method].dense_round0  # it prunes or searches while round 0 trains
    dense_round = c.dense_round or ("train" if searches else "evaluate")
    if dense_round not in ("train", "evaluate"):
        raise ValueError(f"--dense-round must be train or evaluate, got {dense_round!r}")
    if searches and (dense_round == "evaluate" or length.count == 0):
        raise ValueError(
            f"--method {c.method} prunes or searches while round 0 trains: give it training steps and no --dense-round"
        )
    return _Start(path, sha256, dense_round)


def _rewind(c: RunConfig, start: _Start) -> str:
    """--rewind checked against where the run starts; "from" (rewind to the --from weights) is their default."""
    given = c.rewind if c.rewind is not None else ("from" if start.path else "init")
    if given == "from":
        if start.path is None:
            raise ValueError("--rewind from rewinds to the --from weights: give --from WEIGHTS, or use --rewind init")
        rewind = "from"
    else:
        rewind = str(Rewind.parse(given))  # validates
        if rewind == "init" and start.path is not None:
            raise ValueError(
                "--rewind init: with --from the run starts from the given weights; --rewind from returns to them "
                "(none keeps the trained weights, step:K a step of round 0's training)"
            )
        if rewind.startswith("step") and start.path is not None and start.dense_round == "evaluate":
            raise ValueError(
                f"--rewind {rewind} is a step of round 0's training, but round 0 only evaluates the "
                "--from weights: add --dense-round train, or use --rewind from or none"
            )
    if c.method == "lr-rewind":  # imp keeping the trained weights; the trainer replays the LR schedule
        if rewind.startswith("step"):
            raise ValueError(f"--method lr-rewind keeps the trained weights; --rewind {rewind} is imp's")
        rewind = "none"
    return rewind


def _tasks(recipe: str, data_paths: Mapping[str, Any], tasks: list[str] | None) -> list[str]:
    """The tasks given, checked against the recipe's, or all of the recipe's."""
    available = recipe_tasks(recipe, data_paths)
    if not tasks:
        return available
    try:
        return check_tasks(tasks, available)
    except DataError as e:
        raise ValueError(f"--tasks: {e}") from e


def _threads(threads: int | str | None, saved: bool) -> tuple[int, str]:
    """The intra-op thread count and why: given, kept, fixed by the machine (None) or by its load ("auto")."""
    if threads is None:
        choice = machine_threads()
        return choice.threads, choice.reason
    if threads == "auto":
        choice = auto_threads()
        return choice.threads, choice.reason + "; results then depend on the load (the default does not)"
    if type(threads) is not int or threads < 1:
        raise ValueError(f"--threads must be 'auto' or a positive integer, got {threads!r}")
    return threads, "kept from the run's start, so resuming is bit-identical" if saved else GIVEN_THREADS
