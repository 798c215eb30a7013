"""The logs tests' run: tiny, with a control training, logging to CSV and TensorBoard.

``python -m tests.runs.logged_run OUT ROUND KIND STEP`` runs it in a fresh process that SIGKILLs
itself right after that step was logged: nothing of the process survives (no ``finally``, no
``close``), only what reached the disk.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from lotteryir.runs import PruningRun, RunCallbacks, RunConfig

from ..tiny_run import TINY

# One thread in every process: the killed run, its resume and the reference must compute the same bits.
CONFIG = dict(TINY, controls=["random_reinit"], checkpoint_every=2, threads=1)


def run(out: Path, kill_at: tuple[int, str, int] | None = None) -> None:
    """The run in ``out`` (a fresh one, or resumed); with ``kill_at`` (round, kind, step) it SIGKILLs itself there."""

    def on_step(p, kind):
        if kill_at is not None and (p.round, kind, p.step) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # called after the step was logged (runs.run: logs, then hooks)

    with PruningRun(out, RunConfig(**CONFIG), RunCallbacks(on_step=on_step), log="tensorboard") as pruning:
        pruning.run()


if __name__ == "__main__":
    out, r, kind, step = sys.argv[1:5]
    run(Path(out), kill_at=(int(r), kind, int(step)))
    sys.exit("the run finished without reaching its kill point")
