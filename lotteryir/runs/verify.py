"""The files of a run's finished rounds: checked before a run says "finished" or continues.

Each finished round r keeps ``rounds/rNN/`` (mask, ticket, metrics.json, samples.png) and ``pruner/``
keeps the state the run continues from. A missing file is rebuilt where its content is kept
elsewhere, and otherwise named with what to do; nothing is trained or overwritten meanwhile:

==================  ===================================================================
file                rebuilt from
==================  ===================================================================
metrics.json        the round's record in ``pruner/pruner.json``
ticket.safetensors  the last round's: ``pruner/`` (the weights it was written from);
                    an earlier round's: nowhere (its trained weights are kept only there)
mask.safetensors    the round's ticket (which codes the mask); the last round's: ``pruner/``
samples.png         the round's ticket (the test images restored again)
pruner/*            nowhere: the rewind point and the weights are kept only there
==================  ===================================================================

Readers (``export``, ``evaluate``, the analyses) get the same remedies from :func:`round_file`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .._files import atomic_write_text
from ..checkpoints import write_ticket
from ..pruning.ticket import load_compact
from .build import BuiltRun
from .errors import RunError
from .figures import write_samples_figure
from .history import history_entry, read_history
from .layout import (
    MASK_FILE,
    METRICS_FILE,
    PRUNER_STATE_FILE,
    SAMPLES_FILE,
    TICKET_FILE,
    RunLayout,
    committed_round,
)
from .state import load_pruner_state

# The order they are rebuilt in: a mask and the samples are read from the (perhaps rebuilt) ticket.
ROUND_FILES = (TICKET_FILE, MASK_FILE, METRICS_FILE, SAMPLES_FILE)


@dataclass(frozen=True)
class Rebuild:
    """A finished round's file that is missing and will be rebuilt, and from what."""

    round: int
    name: str
    source: str

    def __str__(self) -> str:
        return f"rounds/r{self.round:02d}/{self.name} (from {self.source})"


def load_committed(built: BuiltRun, layout: RunLayout) -> list[Rebuild]:
    """Load the run's committed state into ``built.pruner``; returns the round files to rebuild.

    Raises a RunError, before anything is written or trained, when the pruner state is lost or
    incomplete, or when a finished round lacks a file that cannot be rebuilt.
    """
    state = layout.pruner_state()
    if state is not None:
        load_pruner_state(built.pruner, state, layout.root)
    check_not_behind(layout, built.pruner.round)
    return round_rebuilds(layout, built, samples=bool(built.test_sets))


def _backup_or_new(layout: RunLayout) -> str:
    return (
        f"put it back from a backup and rerun the same command, or start a new run with a new --out "
        f"({layout.root} is left as it is)"
    )


def check_not_behind(layout: RunLayout, done: int) -> None:
    """Refuse a pruner state older than the run's own records (``pruner/`` deleted or replaced).

    Round r + 1 starts only after round r is committed and history.jsonl is written after the commit,
    so a history line or a round folder past ``done + 1`` proves later rounds were committed.
    """
    try:
        listed = [h["round"] for h in read_history(layout.root)]
    except RunError:
        listed = []
    folders = [int(p.name[1:]) for p in layout.rounds.glob("r*") if p.name[1:].isdigit()]
    beyond = max([r for r in listed if r > done] + [r - 1 for r in folders if r > done + 1], default=None)
    if beyond is None:
        return
    have = f"ends at round {done}" if done >= 0 else "is missing"
    raise RunError(
        f"the run finished round {beyond} (its history and rounds/ say so) but its pruner state ({layout.pruner}) "
        f"{have}: the state the run continues from is lost and cannot be rebuilt; "
        f"{_backup_or_new(layout)}. Its finished rounds stay readable (lotteryir export {layout.root} --round N)"
    )


def round_rebuilds(layout: RunLayout, built: BuiltRun, samples: bool = True) -> list[Rebuild]:
    """The missing files of the finished rounds that can be rebuilt; a RunError names those that cannot."""
    last = built.pruner.round
    todo: list[Rebuild] = []
    lost: list[tuple[int, Path]] = []
    for record in built.pruner.history:
        r = record.round
        has_ticket = layout.ticket(r).is_file() or r == last
        for name in ROUND_FILES:
            if (layout.round(r) / name).is_file() or (name == SAMPLES_FILE and not samples):
                continue
            source = _source(name, r, last, has_ticket)
            if source is None:
                lost.append((r, layout.round(r) / name))
            else:
                todo.append(Rebuild(r, name, source))
    if lost:
        rounds = sorted({r for r, _ in lost})
        listed, which = ", ".join(str(p) for _, p in lost), ", ".join(map(str, rounds))
        raise RunError(
            f"{listed} {'is' if len(lost) == 1 else 'are'} missing and cannot be rebuilt: the trained weights of "
            f"round{'s' if len(rounds) > 1 else ''} {which} are kept nowhere else; {_backup_or_new(layout)}"
        )
    return todo


def _source(name: str, r: int, last: int, has_ticket: bool) -> str | None:
    """Where a missing round file is rebuilt from, or None when nothing else holds it."""
    if name == METRICS_FILE:
        return f"the round's record in pruner/{PRUNER_STATE_FILE}"
    if name == TICKET_FILE:
        return "pruner/, the weights it was written from" if r == last else None
    if name == MASK_FILE:
        return "pruner/" if r == last else "its ticket" if has_ticket else None
    return "its ticket" if has_ticket else None


def rebuild_round_files(built: BuiltRun, layout: RunLayout, todo: list[Rebuild]) -> list[Path]:
    """Write each of ``todo`` (atomically, as the round wrote it); returns the paths written."""
    pruner, config = built.pruner, built.config
    records = {h.round: h for h in pruner.history}
    done = []
    for item in sorted(todo, key=lambda x: (x.round, ROUND_FILES.index(x.name))):
        r, path = item.round, layout.round(item.round) / item.name
        if item.name == TICKET_FILE:
            state, mask = pruner.export_state_dict(), pruner.mask
            source_run = str(layout.root.resolve())
            write_ticket(state, mask, path, model=config.model, size=config.size, round=r, source_run=source_run)
        elif item.name == MASK_FILE:
            (pruner.mask if r == pruner.round else load_compact(layout.ticket(r))[1]).save(path)
        elif item.name == METRICS_FILE:
            atomic_write_text(path, json.dumps(history_entry(records[r]), indent=2))
        else:
            model = ticket_model(built, layout.ticket(r))
            write_samples_figure(model, built.test_sets, path, device=built.device)
        done.append(path)
    return done


def ticket_model(built: BuiltRun, ticket: Path) -> torch.nn.Module:
    """The run's network holding the weights of ``ticket`` (built aside: the run's RNG state is untouched)."""
    with torch.random.fork_rng(devices=[]):
        model = built.fresh_model()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state, _, _ = load_compact(ticket, expected_shapes=shapes)
    model.load_state_dict(state, strict=True)
    return model.to(built.device)


def round_file(run_dir: str | os.PathLike, r: int, name: str) -> Path:
    """The path of finished round ``r``'s file ``name``; when missing, a RunError naming how to get it back."""
    layout = RunLayout(run_dir)
    path = layout.round(r) / name
    if path.is_file():
        return path
    last = committed_round(layout)
    source = _source(name, r, last, layout.ticket(r).is_file() or r == last)
    if source is None:
        how = (
            f"it cannot be rebuilt (the trained weights of round {r} are kept nowhere else): put it back from a backup"
        )
    else:
        how = f"rerun the prune command with the same --out to rebuild it from {source}"
    raise RunError(f"{path} is missing; {how}")
