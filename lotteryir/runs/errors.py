"""The error every run-directory problem raises, phrased for the user."""

from __future__ import annotations


class RunError(ValueError):
    """A problem with a run directory or its configuration, phrased for the user."""


def non_finite_advice(
    run_dir: object, lr: float, done_round: int, what: str, step: int, round_: int, at_lr: float
) -> str:
    """What to do after the training diverged: a new run with a lower --lr (the directory is kept).

    ``what`` says what became non-finite (``"the training loss became nan"``). Only divergence gets this
    advice: a checkpoint damaged on disk is named where it is read, with its own remedy.
    """
    # Continuing this directory with another --lr would mix two training recipes in one
    # lottery-ticket curve (its finished rounds, or at least its config.json, fix the lr), so the
    # only sound way on is a new run; the directory is kept, as the evidence of what failed.
    tied = (
        f"its finished rounds 0-{done_round} were trained with --lr {lr:g}"
        if done_round >= 0
        else f"its config.json fixes --lr {lr:g}"
    )
    return (
        f"{what} at step {step} of round {round_} (learning rate {at_lr:.3g} at that "
        f"step); rerunning the same command would fail the same way, and {run_dir} cannot continue with "
        f"another --lr because {tied}. Start a new run with a lower --lr and a new --out, e.g. "
        f"--lr {lr / 10:g} --out {run_dir}-lr{lr / 10:g}; {run_dir} is kept as it is"
    )
