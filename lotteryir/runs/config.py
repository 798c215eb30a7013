"""The resolved configuration of a pruning run: what defines its results, saved first."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..data import DataError, Recipe, available_recipes, get_recipe
from ..data.recipes import normalize_options
from ..engine.losses import LOSSES
from ..models.external import canonical_name, file_sha256, model_file
from ..models.init import INITS
from ..models.registry import default_size
from ..pruning import MAX_ROUNDS, Rewind, rounds_for_density
from ..pruning.methods import METHODS
from .errors import RunError
from .methods import check_method

# The built-in sample recipe on CPU: `lotteryir prune --model mirl --rounds 3` must finish within
# 6 minutes on 2 cores, so the defaults there are small and step-based. Learning rate, steps, loss,
# init and the identity pairs in the mix were chosen on a validation split of the training
# photographs by benchmarks/sample_defaults.py (results/sample_defaults.json), never on test images.
SAMPLE_SIZE = "tiny"
SAMPLE_STEPS = 600
SAMPLE_PATCH = 48
SAMPLE_LR = 4e-3
SAMPLE_LOSS = "l1"
SAMPLE_INIT = "identity"
SHIPPED_MODELS = ("mirl", "restormer")  # the networks whose `output` conv the identity init zeroes
PAPER_LR = 2e-4
DEFAULT_EPOCHS = 120  # the paper's round length on real data
DEFAULT_SIZE = "full"  # the size on real data
DEFAULT_PATCH = 64
DEFAULT_LOSS = "l1"  # the paper's
DEFAULT_INIT = "default"  # as the network's builder draws it

T = TypeVar("T")


def resolved_setting(value: T | None, option: str) -> T:
    """A setting :meth:`RunConfig.resolved` always fills in; None means the configuration was never resolved."""
    if value is None:
        raise RunError(f"{option} is unset: the run configuration was not resolved (RunConfig.resolved())")
    return value


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

# Settings that may change between a run and its resumption without changing its results' meaning.
# (A different thread count changes float results in the last bits; a resumed run therefore keeps
# the count it started with unless --threads says otherwise.)
OPERATIONAL = ("device", "num_workers", "checkpoint_every", "threads", "compile")
# Settings a resumed run may grow: more rounds (or a lower target density) continue it.
GROWABLE = ("rounds", "target_density")


@dataclass
class RunConfig:
    """Everything that defines a pruning run. Saved as ``config.json`` before anything else."""

    model: str = "mirl"
    size: str | None = None
    recipe: str = "sample"
    data: str | None = None
    data_paths: dict[str, str] = field(default_factory=dict)
    tasks: list[str] | None = None
    rounds: int | None = None
    target_density: float | None = None
    rate: float = 0.2
    scope: str = "global"
    rewind: str = "init"
    epochs: int | None = None
    steps: int | None = None
    warmup_epochs: float | None = None
    batch_size: int = 8
    patch_size: int | None = None
    lr: float | None = None  # None: SAMPLE_LR on the sample recipe, else the paper's 2e-4
    seed: int = 0
    controls: list[str] = field(default_factory=list)
    device: str | None = None
    num_workers: int = 0
    checkpoint_every: int = 50
    eval_tile: int | None = None
    preset: str | None = None
    threads: int | None = None  # intra-op CPU threads; None: the idle cores when the run starts
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
    method: str = "imp"
    method_options: dict[str, Any] = field(default_factory=dict)
    shuffle_within_layers: bool = False

    def resolved(self) -> RunConfig:
        """Fill defaults that depend on other settings (sample sizes, round counts) and validate."""
        c = dataclasses.replace(
            self,
            data_paths=dict(self.data_paths),
            tasks=list(self.tasks) if self.tasks else None,
            method_options=dict(self.method_options),
        )
        if c.preset is not None:
            if c.preset != "paper":
                raise ValueError(f"unknown preset {c.preset!r}; the only preset is 'paper'")
            for key, value in PAPER_PRESET.items():
                if key == "rounds" and c.method in METHODS and METHODS[c.method].fixed_rounds is not None:
                    continue  # a method that prunes to --target-density at once has no rounds to set
                setattr(c, key, value)
            if not c.data:
                raise ValueError("--preset paper needs the paper's data: give --data ROOT (see `lotteryir recipes`)")
        if not 0.0 < c.rate < 1.0:
            raise ValueError(
                f"--rate must be in (0, 1) (fraction of the remaining weights pruned per round), got {c.rate}"
            )
        c.method_options = check_method(c.method, c.method_options, c.shuffle_within_layers, c.controls)
        fixed = METHODS[c.method].fixed_rounds
        if fixed is not None:  # prunes to the target in one go: the target is the setting, rounds follow
            if c.target_density is None or not 0.0 < c.target_density < 1.0:
                raise ValueError(f"--method {c.method} needs --target-density D in (0, 1) (it prunes to D at once)")
            if c.rounds is not None and c.rounds != fixed:
                raise ValueError(f"--method {c.method} takes --target-density, not --rounds")
            c.rounds = fixed
        elif c.target_density is not None:
            if not 0.0 < c.target_density < 1.0:
                raise ValueError(f"--target-density must be in (0, 1), got {c.target_density}")
            needed = rounds_for_density(c.target_density, c.rate)
            # A resolved configuration holds both (resolving it again must work); a user gives one.
            if c.rounds is not None and c.rounds != needed:
                raise ValueError("give --rounds or --target-density, not both")
            c.rounds = needed
        if c.rounds is None:
            raise ValueError("give --rounds N or --target-density D")
        if not 0 <= c.rounds <= MAX_ROUNDS:
            raise ValueError(f"--rounds must be between 0 and {MAX_ROUNDS}, got {c.rounds}")
        if c.epochs is not None and c.steps is not None:
            raise ValueError("give --epochs or --steps, not both")
        for option, value, least in (
            ("--epochs", c.epochs, 1),
            ("--steps", c.steps, 1),
            ("--checkpoint-every", c.checkpoint_every, 1),
            ("--num-workers", c.num_workers, 0),
        ):
            if value is not None and value < least:
                raise ValueError(f"{option} must be at least {least}, got {value}")
        # Paths are resolved once, here: a run means the same data from any working directory.
        if c.data is not None:
            c.data = os.path.abspath(os.path.expanduser(c.data))
        # A file named as model is stored absolute (the same file from any directory), with its hash.
        c.model = canonical_name(c.model)
        source = model_file(c.model)
        if source is not None and source.is_file():
            c.model_sha256 = file_sha256(source)
        recipes = [info.name for info in available_recipes()]
        if c.recipe not in recipes:
            raise ValueError(f"--recipe: unknown data recipe {c.recipe!r}; available: {', '.join(recipes)}")
        c.data_paths = recipe_options(c.recipe, c.data, c.data_paths)
        Rewind.parse(c.rewind)  # validates
        c.rewind = str(Rewind.parse(c.rewind))
        if c.method == "lr-rewind":  # imp keeping the trained weights; the trainer replays the LR schedule
            if c.rewind.startswith("step"):
                raise ValueError(f"--method lr-rewind keeps the trained weights; --rewind {c.rewind} is imp's")
            c.rewind = "none"
        if c.scope not in ("global", "layerwise", "random"):
            raise ValueError(f"--scope must be global, layerwise or random, got {c.scope!r}")
        sample = c.recipe == "sample"
        if c.size is None:
            # A model with one size (your own, named package.module:factory) needs no --size.
            c.size = default_size(c.model, SAMPLE_SIZE if sample else DEFAULT_SIZE)
        if c.patch_size is None:
            c.patch_size = SAMPLE_PATCH if sample else DEFAULT_PATCH
        if c.epochs is None and c.steps is None:
            if sample:
                c.steps = SAMPLE_STEPS
            else:
                c.epochs = DEFAULT_EPOCHS
        if c.lr is None:
            c.lr = SAMPLE_LR if sample else PAPER_LR
        if c.loss is None:
            c.loss = SAMPLE_LOSS if sample else DEFAULT_LOSS
        if not (math.isfinite(c.lr) and c.lr > 0):
            raise ValueError(f"--lr must be a finite positive number, got {c.lr}")
        if c.threads is not None and (type(c.threads) is not int or c.threads < 1):
            raise ValueError(f"--threads must be 'auto' or a positive integer, got {c.threads!r}")
        if c.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {c.loss!r}")
        if c.init is None:
            c.init = SAMPLE_INIT if sample and c.model in SHIPPED_MODELS else DEFAULT_INIT
        if c.init not in INITS:
            raise ValueError(f"--init must be one of {', '.join(INITS)}, got {c.init!r}")
        if c.batch_size < 1 or c.patch_size < 8:
            raise ValueError(f"--batch-size must be >= 1 and --patch-size >= 8 (got {c.batch_size}, {c.patch_size})")
        return c

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

    def changed_model_file(self, other: RunConfig) -> str | None:
        """Why ``other`` (the same run resumed) names a changed model file, else None.

        Runs saved before the hash was recorded (or of registered networks) have nothing to compare.
        """
        if self.model != other.model or not self.model_sha256 or not other.model_sha256:
            return None
        if self.model_sha256 == other.model_sha256:
            return None
        source = model_file(self.model)
        return (
            f"{source} changed since the run started: its SHA-256 was {self.model_sha256[:12]}..., "
            f"now {other.model_sha256[:12]}..."
        )

    def differences(self, other: RunConfig, allow_growth: bool = False) -> list[str]:
        """Result-defining settings that differ (operational ones such as the device may change).

        ``allow_growth``: more rounds in ``other`` (a larger ``rounds`` or a smaller
        ``target_density``) continue this run rather than differ from it.
        """
        a, b = self.to_dict(), other.to_dict()
        skip = (
            OPERATIONAL
            + ("model_sha256",)
            + (GROWABLE if allow_growth and (b["rounds"] or 0) > (a["rounds"] or 0) else ())
        )
        named = {"method": "--method (a run keeps the method it started with)"}
        return [f"{named.get(k, k)}: {a[k]!r} -> {b[k]!r}" for k in a if k not in skip and a[k] != b[k]]


def recipe_options(recipe: str, data: str | None, paths: Mapping[str, Any]) -> dict[str, Any]:
    """A recipe's --data-path options checked and typed (folders made absolute); errors name --data-path."""
    try:
        return normalize_options(recipe, data, paths)
    except DataError as e:
        raise ValueError(f"--data-path: {e}") from e


def open_recipe(recipe: str, data: str | None, paths: Mapping[str, Any]) -> Recipe:
    """The recipe a run trains on or a command evaluates on, its options checked and its folders found.

    Raises DataError naming the first missing folders, before any image is read.
    """
    opened = get_recipe(recipe, root=data, **recipe_options(recipe, data, paths))
    problems = opened.check()
    if problems:
        more = f"; ... ({len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError(f"recipe {recipe!r} cannot run on {data}: " + "; ".join(problems[:3]) + more)
    return opened
