"""Why a training cannot go on: it diverged (the recipe's doing) or its checkpoint is damaged (the disk's).

The two need opposite remedies, so they are told apart where they are found: a loss or weights
that become NaN while training raise :class:`NonFiniteLossError` (a lower learning rate helps), and
the trainer never writes a checkpoint holding NaN or infinity. A checkpoint found holding them, or
missing a file, was damaged after it was written: :class:`DamagedCheckpointError` names it and the
way back (delete it; the training starts again from the last good state, its first step).
"""

from __future__ import annotations

from pathlib import Path

from lotteryir._finite import tensor_list


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite (or, at a checkpoint, the weights did); nothing bad was saved."""

    def __init__(
        self,
        step: int,
        lr: float,
        loss: float,
        round: int,
        checkpoint: Path | None,
        checkpoint_step: int | None,
        weights: list[str] | None = None,
    ):
        self.step, self.lr, self.loss, self.round, self.weights = step, lr, loss, round, weights
        where = (
            f"the last good checkpoint (step {checkpoint_step}) in {checkpoint} is intact"
            if checkpoint is not None and checkpoint_step is not None
            else "no checkpoint was written"
        )
        noun = f"weights ({tensor_list(weights)})" if weights else f"loss ({loss})"
        super().__init__(
            f"non-finite {noun} at step {step} of round {round} with learning rate {lr:.3g}; {where}. "
            "Try a lower lr, clip_grad, or amp='bf16' instead of 'fp16'."
        )

    @property
    def what(self) -> str:
        """What became non-finite, as a sentence's start: ``"the training loss became nan"``."""
        if self.weights:
            return f"the weights became NaN or infinite in {tensor_list(self.weights)}"
        return f"the training loss became {self.loss}"


class DamagedCheckpointError(ValueError):
    """A mid-round checkpoint that cannot be resumed: a file is missing or unreadable, or holds NaN/infinity."""

    def __init__(self, problem: str, directory: Path, round: int | None) -> None:
        self.directory, self.round = directory, round
        which = f"round {round}'s training" if round is not None else "the training"
        super().__init__(
            f"{problem}, so the checkpoint in {directory} is damaged; delete {directory} and rerun the same "
            f"command: {which} starts again from its first step, the last good state (finished rounds are kept)"
        )
