"""The typer application and the entry point that turns every error into one line and an exit code."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from .render import err

app = typer.Typer(
    name="lotteryir",
    help="Find lottery tickets (sparse subnetworks that train to full quality) in image-restoration networks.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors (may also follow the command)."),
) -> None:
    """lotteryir: iterative magnitude pruning for MIR-L / PromptIR, Restormer, or your own network."""


def show_pruning_warnings() -> None:
    """Pruning warnings (layer collapse, ...) as one line each, from rank 0 only; others as Python prints them."""
    import warnings

    default = warnings.showwarning

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        # Looked up, not imported: importing pruning here would load torch before `--help` (see docs/design.md).
        # Until something has imported it, no PruningWarning can have been raised.
        pruning = sys.modules.get("lotteryir.pruning")
        if pruning is None or not issubclass(category, pruning.PruningWarning):
            return default(message, category, filename, lineno, file, line)
        from ..engine.distributed import env_rank

        if env_rank() == 0:  # every rank prunes the same way: one report is enough
            err.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear error line and a non-zero exit instead of a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    show_pruning_warnings()
    try:
        # typer's standalone mode turns usage errors into its own short message and exit code 2.
        app(args=args, prog_name="lotteryir")
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted; rerun the same command to resume", highlight=False)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns errors into a line
        from ..engine import TrainingStopped

        if debug:
            raise
        from ..engine.distributed import env_rank

        who = f"rank {env_rank()}: " if env_rank() else ""  # under torchrun every rank reports its own failure
        if isinstance(e, TrainingStopped):
            if not who:
                err.print(f"stopped: {e}. Rerun the same command to resume.", highlight=False, markup=False)
            return 130
        message = str(e) if not isinstance(e, KeyError) else str(e.args[0] if e.args else e)
        first, _, rest = message.strip().partition("\n")
        if rest.strip():  # one line on the terminal; the full text (e.g. an expected layout) with --debug
            first += " (details: rerun with --debug; layouts: `lotteryir recipes`)"
        err.print(f"{who}error: {first}", highlight=False, markup=False, soft_wrap=True)
        return 1
