"""Export a run's round (or rewrite a ticket file) as a compact ticket."""

from __future__ import annotations

import os
from pathlib import Path

from ..checkpoints import check_finite, write_ticket
from ..models.registry import signature
from ..pruning.ticket import load_compact, read_compact_metadata
from .errors import RunError
from .history import finished_round
from .layout import TICKET_FILE, is_run_dir, read_config
from .outputs import check_output
from .verify import round_file


def round_ticket_path(run_dir: str | os.PathLike, round: int | None = None) -> Path:
    """The stored ticket of ``round`` (default: the last finished round) of a run."""
    run_dir = Path(run_dir)
    read_config(run_dir)  # clear error when it is not a run
    return round_file(run_dir, finished_round(run_dir, round), TICKET_FILE)


def export_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    round: int | None = None,
    dtype: str = "fp32",
    overwrite: bool = False,
    *,
    allow_nonfinite: bool = False,
    allow_unchecked: bool = False,
) -> dict:
    """Write the compact ticket of a run's round, or rewrite a ticket file, to ``out``; returns its metadata.

    ``run_dir`` is a run directory or a ticket file: the result is always a current (version 2,
    checksummed) ticket, so ``allow_unchecked`` turns a version 1 ticket into a checked one.
    ``out`` may not lie inside a run directory, and an existing file is replaced only with
    ``overwrite``, also when another process creates it meanwhile. Weights holding NaN or infinity
    are refused (NonFiniteWeightsError) unless ``allow_nonfinite``: a fresh checksum must not vouch for them.
    """
    out = check_output(out, overwrite)
    source = Path(run_dir)
    model: object  # a ticket file's header may hold anything; only strings name a registered network
    size: object
    if is_run_dir(source):
        config = read_config(source)
        ticket, model, size = round_ticket_path(source, round), config.model, config.size
    elif source.is_file():
        if round is not None:
            raise RunError(f"--round only applies to a run directory; {source} is a file")
        header = read_compact_metadata(source, allow_unchecked=allow_unchecked)
        ticket, model, size = source, header.get("model"), header.get("size")
    else:
        raise RunError(f"{source} is neither a run directory nor a ticket file")
    try:
        expected = signature(model, size) if isinstance(model, str) and isinstance(size, str) else None
    except (KeyError, ValueError):  # a network outside the registry: the ticket's own limits apply
        expected = None
    state, mask, header = load_compact(ticket, expected_shapes=expected, allow_unchecked=allow_unchecked)
    if not allow_nonfinite:
        check_finite(state, ticket)
    # The round's own metadata (round, source run) travels; the writer recomputes what it derives.
    # Keys named like the writer's own arguments cannot be metadata of ours: a crafted file's are dropped.
    own = ("model", "size", "state", "mask", "path", "dtype", "overwrite")
    extra = {k: v for k, v in header.items() if k not in own}
    return write_ticket(
        state, mask, out, model=header.get("model"), size=header.get("size"), dtype=dtype, overwrite=overwrite, **extra
    )
