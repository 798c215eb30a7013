"""Task tickets: how much two runs' masks agree, and how A's ticket does when trained on B's task.

The overlap (:func:`run_overlap`) reads the two runs' masks of one round; :func:`rewind_magnitude_overlap`
is its reference for runs from one init (a ticket against its own rewind weights' magnitudes). The transfer
(:func:`transfer_ticket`) takes A's mask of that round with A's rewind point (the weights A's
survivors return to), trains it as B trains its own ticket of that round (B's recipe, trainer, seed
and round, hence B's data order), and scores it on B's test sets, beside B's own ticket and B's
degraded inputs.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any

from safetensors.torch import load_file

from .._finite import nonfinite, nonfinite_phrase
from ..models import refuse_from_file
from ..pruning import Mask, RoundContext, attach_masks
from ..runs import RunError, RunLayout, build_run, read_config, read_history
from ..runs.layout import MASK_FILE
from ..runs.verify import round_file
from .overlap import MaskOverlap, magnitude_mask_like, mask_overlap
from .stability import start_from


def common_round(run_a: str | os.PathLike, run_b: str | os.PathLike, round: int | None = None) -> int:
    """``round`` if both runs finished it; by default the last round both finished."""
    done_a = {h["round"] for h in read_history(run_a)}
    done_b = {h["round"] for h in read_history(run_b)}
    both = sorted(done_a & done_b)
    if round is None:
        if not both:
            raise RunError(f"{run_a} and {run_b} have no finished round in common")
        return both[-1]
    for run, done in ((run_a, done_a), (run_b, done_b)):
        if round not in done:
            listed = ", ".join(map(str, sorted(done))) or "none"
            raise RunError(f"round {round} of {run} is not finished; finished rounds: {listed}")
    return round


def run_overlap(
    run_a: str | os.PathLike, run_b: str | os.PathLike, round: int | None = None
) -> tuple[int, MaskOverlap]:
    """(the round, the overlap of the two runs' masks of that round)."""
    for run in (run_a, run_b):
        read_config(run)  # a clear error when it is not a run
    r = common_round(run_a, run_b, round)
    masks = [Mask.load(round_file(run, r, MASK_FILE)) for run in (run_a, run_b)]
    try:
        return r, mask_overlap(masks[0], masks[1])
    except ValueError as e:
        raise RunError(f"the masks of {run_a} and {run_b} do not belong to one network: {e}") from e


def rewind_magnitude_overlap(run: str | os.PathLike, round: int | None = None) -> tuple[int, MaskOverlap]:
    """(the round, the overlap of the run's mask with its rewind weights' own magnitude mask).

    The magnitude mask keeps, per tensor, as many weights as the ticket keeps: the largest of the weights
    the survivors return to. How much of the ticket those magnitudes already choose, before any training.
    """
    read_config(run)
    r = common_round(run, run, round)
    mask = Mask.load(round_file(run, r, MASK_FILE))
    try:
        reference = magnitude_mask_like(mask, rewind_point(run))
        return r, mask_overlap(mask, reference)
    except ValueError as e:
        raise RunError(f"the rewind point of {run} does not fit its mask: {e}") from e


@dataclass
class TransferResult:
    """A's ticket trained on B's task, scored on B's tests, with B's own ticket and B's inputs beside it."""

    round: int
    density: float
    transfer: dict[str, Any]  # eval (per set), mean_psnr, ...: A's mask from A's rewind point, trained as B trains
    own: dict[str, Any]  # B's history entry of that round
    train: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        own = {k: self.own.get(k) for k in ("eval", "mean_psnr", "mean_input_psnr")}
        return {
            "round": self.round,
            "density": self.density,
            "transfer": self.transfer,
            "own": own,
            "train": self.train,
        }


def rewind_point(run: str | os.PathLike) -> dict:
    """The weights a run's survivors return to (its pruner's active rewind point), from safetensors."""
    layout = RunLayout(run)
    state = layout.pruner_state()
    if state is None:
        raise RunError(f"{run} holds no pruner state (no finished round)")
    meta = json.loads((state / "pruner.json").read_text())
    path = state / "rewind.safetensors"
    if not meta.get("has_rewind_point"):
        raise RunError(f"{run} kept no rewind point ({path} is missing)")
    backup = "it is kept nowhere else: put it back from a backup"
    if not path.is_file():
        raise RunError(f"{path} is missing, though {state / 'pruner.json'} says the run kept it; {backup}")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error type for a truncated or foreign file
        raise RunError(f"{path} is damaged or not a safetensors file ({e})") from e
    if bad := nonfinite(tensors):
        raise RunError(f"{nonfinite_phrase(path, bad)}, so it is damaged; {backup}")
    return tensors


def transfer_ticket(
    run_a: str | os.PathLike, run_b: str | os.PathLike, round: int | None = None, *, device: str | None = None
) -> TransferResult:
    """Train A's ticket of ``round`` (mask and rewind point) on B's task as B trains; score on B's tests.

    Networks named by file must be registered first (:func:`lotteryir.models.register_import_path`).
    """
    config_a, config_b = read_config(run_a), read_config(run_b)
    refuse_from_file(config_a.model, str(RunLayout(run_a).config))
    refuse_from_file(config_b.model, str(RunLayout(run_b).config))
    r = common_round(run_a, run_b, round)
    if r == 0:
        raise RunError("round 0 is dense: a transfer needs a pruned round (--round 1 or later)")
    mask = Mask.load(round_file(run_a, r, MASK_FILE))
    start = rewind_point(run_a)
    built = build_run(config_b.on_device(device))
    model = copy.deepcopy(built.model)
    try:
        model = start_from(model, start)
        attach_masks(model, mask)
    except ValueError as e:
        raise RunError(
            f"the ticket of {run_a} does not fit the network of {run_b} ({config_b.model}/{config_b.size}): {e}"
        ) from e
    ctx = RoundContext(round=r, density=mask.density, seed=config_b.seed)
    train = built.trainer(model, ctx)
    scores = built.evaluate(model)
    own = next(h for h in read_history(run_b) if h["round"] == r)
    return TransferResult(round=r, density=mask.density, transfer=scores, own=own, train=train)
