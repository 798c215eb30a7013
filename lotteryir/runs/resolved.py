"""A run's configuration once resolved: every setting decided, in its type. What ``config.json`` stores.

:class:`RunConfig <lotteryir.runs.config.RunConfig>` is what a person asks for (most settings may be
left unset); :meth:`RunConfig.resolved` decides each one (recipe defaults, sample or paper settings,
the thread count, the init, the method's options) and returns a :class:`ResolvedRunConfig`, whose
fields have no "unset" left. Building a run reads it and never returns to the resolver; a resume
compares two of them. A stored one is read back by :func:`lotteryir.runs.config.resolved_from_dict`.

A few fields stay optional because None is a value a person chose, not a default still to fill in:
``data`` (a built-in recipe has no data root), ``target_density`` (no target, rounds given),
``warmup_epochs`` (the trainer's own warm-up, 15/120 of the round), ``eval_tile`` (whole images),
``preset`` and ``model_sha256`` (a network that is not a file).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ..models.external import model_file

# Settings that may change between a run and its resumption without changing its results' meaning.
# (A different thread count changes float results in the last bits; a resumed run therefore keeps
# the count it started with unless --threads says otherwise.)
OPERATIONAL = ("device", "num_workers", "checkpoint_every", "threads", "threads_reason", "compile")
# Compared by what they hold, not where they lie: a moved weights file with the same SHA-256 is the same start.
LOCATIONS = ("from_weights",)
# Settings a resumed run may grow: more rounds (or a lower target density) continue it.
GROWABLE = ("rounds", "target_density")
# The reason a thread count carries when the command gave it (--threads N): a resume then uses it.
GIVEN_THREADS = "--threads"


@dataclass(frozen=True)
class RoundLength:
    """How long one round trains: a number of optimizer steps or of epochs over the training set."""

    unit: Literal["steps", "epochs"]
    count: int

    @property
    def steps(self) -> int | None:
        return self.count if self.unit == "steps" else None

    @property
    def epochs(self) -> int | None:
        return self.count if self.unit == "epochs" else None

    def option(self) -> str:
        """As a person typed it: ``--steps 600`` or ``--epochs 120``."""
        return f"--{self.unit} {self.count}"


@dataclass(frozen=True)
class ResolvedRunConfig:
    """Everything that defines a pruning run, every setting decided (see the module's docstring)."""

    model: str
    size: str
    recipe: str
    data: str | None
    data_paths: dict[str, Any]
    tasks: list[str]
    rounds: int
    target_density: float | None
    rate: float
    scope: str
    rewind: str
    length: RoundLength
    warmup_epochs: float | None
    batch_size: int
    patch_size: int
    lr: float
    seed: int
    controls: list[str]
    device: str
    num_workers: int
    checkpoint_every: int
    eval_tile: int | None
    preset: str | None
    threads: int
    loss: str
    init: str
    model_sha256: str | None
    compile: bool
    method: str
    method_options: dict[str, Any]
    shuffle_within_layers: bool
    from_weights: str | None  # the trained weights the run starts from (None: the builder's, drawn at random)
    from_weights_sha256: str | None
    dense_round: str  # "train" or "evaluate" (the --from weights, as given)
    bn_recalibrate: int  # BatchNorm statistics recomputed on this many training batches before each evaluation
    # Why this thread count (shown in the first line); operational, not compared on resume.
    threads_reason: str = field(default=GIVEN_THREADS, compare=False)

    @property
    def steps(self) -> int | None:
        return self.length.steps

    @property
    def epochs(self) -> int | None:
        return self.length.epochs

    def replace(self, **changes: Any) -> ResolvedRunConfig:
        """A copy with ``changes`` (a resolved configuration is a value: it is never edited in place)."""
        return dataclasses.replace(self, **changes)

    @property
    def trains_round0(self) -> bool:
        """Whether round 0 trains (else it only evaluates the --from weights)."""
        return self.dense_round == "train" and self.length.count > 0

    def trains(self, round: int) -> bool:
        """Whether round ``round`` trains (``--steps 0`` from trained weights: none does)."""
        return self.trains_round0 if round == 0 else self.length.count > 0

    @property
    def pruner_rewind(self) -> str:
        """The rewind as the pruner knows it: rewinding to the --from weights is rewinding to its start."""
        return "init" if self.rewind == "from" else self.rewind

    def on_device(self, device: str | None) -> ResolvedRunConfig:
        """The same run on ``device``, or on its own device when none is given (CPU where CUDA is missing)."""
        if device is None:
            device = self.device if self.device == "cpu" or torch.cuda.is_available() else "cpu"
        return self.replace(device=device)

    def to_dict(self) -> dict[str, Any]:
        """As ``config.json`` stores it: the round length as ``epochs`` and ``steps`` (one of them null)."""
        data = dataclasses.asdict(self)
        data.pop("length")
        data.pop("threads_reason")
        return {**data, "epochs": self.epochs, "steps": self.steps}

    def changed_model_file(self, other: ResolvedRunConfig) -> str | None:
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

    def differences(self, other: ResolvedRunConfig, allow_growth: bool = False) -> list[str]:
        """Result-defining settings that differ (operational ones such as the device may change).

        ``allow_growth``: more rounds in ``other`` (a larger ``rounds`` or a smaller
        ``target_density``) continue this run rather than differ from it.
        """
        a, b = self.to_dict(), other.to_dict()
        skip = (
            OPERATIONAL
            + LOCATIONS
            + ("model_sha256",)
            + (GROWABLE if allow_growth and b["rounds"] > a["rounds"] else ())
        )
        named = {
            "method": "--method (a run keeps the method it started with)",
            "from_weights_sha256": "the --from weights (SHA-256)",
        }
        return [f"{named.get(k, k)}: {a[k]!r} -> {b[k]!r}" for k in a if k not in skip and a[k] != b[k]]
