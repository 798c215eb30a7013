"""Everything the command line draws: the consoles, the round table, the evaluation table, progress, durations.

The one place that decides how lotteryir looks on a terminal; commands hand it data and print what it returns.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..data.tasks import SHORT_NAMES

# Piped output (logs, CI, README snippets) gets room for the round table instead of 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)

_SHORT = SHORT_NAMES


def duration(seconds: float | None) -> str:
    """Seconds as the unit a person reads: '45 s', '12 min', '2.5 h'; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def short(label: str) -> str:
    """A test set's column name: 'denoise_25/sample' -> 'σ25', 'derain/Rain100L' -> 'rain Rain100L'."""
    task, _, dataset = label.partition("/")
    name = _SHORT.get(task, task)
    return name if dataset in ("", "sample") else f"{name} {dataset}"


def json_text(payload: Any) -> str:
    """JSON with NaN and infinity (which JSON does not have) written as null."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(payload), indent=2, allow_nan=False)


def _input_row(history: list[dict]) -> dict[str, dict[str, float]]:
    """Per-set scores of the degraded inputs (the same in every round; the latest round's are used)."""
    for h in reversed(history):
        ev = h.get("eval", {})
        if ev and all("input_psnr" in v for v in ev.values()):
            return {label: {"psnr": v["input_psnr"], "ssim": v["input_ssim"]} for label, v in ev.items()}
    return {}


def worse_than_input(ev: dict[str, dict[str, float]]) -> list[str]:
    """Test sets on which the restorer scores below its own degraded input."""
    return [label for label, v in ev.items() if "input_psnr" in v and v["psnr"] < v["input_psnr"]]


# The verdict's tolerance as the lines below print it: lotteryir.engine.evaluate.UNCHANGED_DB, not imported
# here because the command line starts without torch (tests/cli/test_startup.py).
UNCHANGED = "0.01 dB"


def did_not_learn(ev: dict[str, dict[str, Any]]) -> list[str]:
    """Test sets a training left at its input: every image within 0.01 dB of it (``did_not_learn`` per set)."""
    return [label for label, v in ev.items() if v.get("did_not_learn") is True]


def not_learned_notes(history: list[dict]) -> list[str]:
    """One line per training (a round, or a round's control) that left some test set exactly at its input."""
    lines = []
    for h in history:
        trainings = [("", h.get("eval", {}))]
        trainings += [(f" ({kind})", c.get("eval", {})) for kind, c in sorted((h.get("controls") or {}).items())]
        for what, ev in trainings:
            sets = did_not_learn(ev)
            if sets:
                lines.append(
                    f"round {h['round']}{what} did not learn on {', '.join(map(short, sets))}: every image "
                    f"within {UNCHANGED} of its input"
                )
    return lines


def _gain(value: float) -> str:
    return f"[red]{value:+.2f}[/]" if value < 0 else f"{value:+.2f}"


def round_table(history: list[dict], title: str = "") -> Table:
    """Rounds as rows under an "input" row: density, weights left, PSNR per test set, mean PSNR, gain, SSIM,
    controls, the optimizer steps spent so far (all trainings, controls included), time.

    A PSNR below the degraded input's is red, and a line under the table names those sets.
    """
    from ..runs.cost import with_cost

    history = with_cost(history)
    labels = sorted({label for h in history for label in h.get("eval", {})})
    kinds = sorted({k for h in history for k in h.get("controls", {})})
    inputs = _input_row(history)
    notes = []
    for h in history:
        ev = h.get("eval", {})
        worse = [label for label in worse_than_input(ev) if label not in did_not_learn(ev)]  # named below
        if worse:
            notes.append(
                f"round {h['round']} is worse than its input on "
                + ", ".join(f"{short(l)} ({h['eval'][l]['psnr'] - h['eval'][l]['input_psnr']:+.2f} dB)" for l in worse)
            )
    caption = (
        "PSNR in dB per test set; gain = mean PSNR minus the degraded input's; steps = optimizer steps of every "
        "training so far (controls included); `report --json` has SSIM per set and the cost in seconds"
    )
    unlearned = not_learned_notes(history)
    if inputs and not notes and not unlearned:
        caption += "\nevery round beats the degraded input on every test set"
    notes += unlearned + method_notes(history)
    table = Table(title=title, caption="\n".join([caption, *notes]), pad_edge=False)
    columns = ["round", "density", "left", *map(short, labels), "mean PSNR", "gain", "SSIM"]
    for col in [*columns, *[k.replace("random_", "") for k in kinds], "steps", "time"]:
        table.add_column(col, justify="right", no_wrap=True)
    if inputs:
        table.add_row(
            "input",
            "",
            "",
            *[f"{inputs[l]['psnr']:.2f}" if l in inputs else "-" for l in labels],
            f"{statistics.fmean(v['psnr'] for v in inputs.values()):.2f}",
            "",
            f"{statistics.fmean(v['ssim'] for v in inputs.values()):.4f}",
            *["" for _ in kinds],
            "",
            "",
            style="dim",
            end_section=True,
        )
    for h in history:
        ev = h.get("eval", {})
        cells = []
        for l in labels:
            if l not in ev:
                cells.append("-")
            elif "input_psnr" in ev[l] and ev[l]["psnr"] < ev[l]["input_psnr"]:
                cells.append(f"[red]{ev[l]['psnr']:.2f}[/]")
            else:
                cells.append(f"{ev[l]['psnr']:.2f}")
        gain = (
            (h["mean_psnr"] - h["mean_input_psnr"])
            if h.get("mean_psnr") is not None and h.get("mean_input_psnr") is not None
            else None
        )
        ctrl = [f"{h['controls'][k]['mean_psnr']:.2f}" if k in h.get("controls", {}) else "-" for k in kinds]
        table.add_row(
            str(h["round"]),
            f"{h['density']:.4f}",
            f"{h['remaining']:,}",
            *cells,
            f"{h['mean_psnr']:.2f}" if h.get("mean_psnr") is not None else "-",
            "-" if gain is None else _gain(gain),
            f"{h['mean_ssim']:.4f}" if h.get("mean_ssim") is not None else "-",
            *ctrl,
            f"{h['cost_total']['steps']:,}",
            duration(h.get("seconds")),
        )
    return table


def method_notes(history: list[dict]) -> list[str]:
    """One line per round whose method recorded something a reader needs (early-bird's stop, gmp's schedule)."""
    lines = []
    for h in history:
        facts = h.get("method") or {}
        if facts.get("name") == "early-bird" and "distances" in facts:
            stop = facts.get("stopped_at")
            lines.append(
                f"early-bird: round {h['round']} stopped at step {stop} of {facts.get('total_steps')} (mask distance "
                f"below {facts.get('epsilon')} for {facts.get('patience')} checks)"
                if stop is not None
                else f"early-bird: the masks never settled; round {h['round']} trained to its end (as oneshot)"
            )
        elif facts.get("name") == "gmp":
            lines.append(
                f"gmp: sparsity rose on the cubic schedule from step {facts['start']} to {facts['end']}, "
                f"mask updated every {facts['every']} steps"
            )
    return lines


def evaluate_table(payload: dict[str, Any], title: str) -> Table:
    """One row per test set (input PSNR, PSNR, gain, input SSIM, SSIM) and a mean row; worse sets named below."""
    summary = payload["sets"]
    same = did_not_learn(summary)
    worse = [label for label in payload["worse_than_input"] if label not in same]
    caption = "input = the degraded images themselves; " + (
        "WORSE than the input on " + ", ".join(worse) if worse else "the restorer beats them on every test set"
    )
    if same:
        caption = caption.replace("on every test set", "on the other test sets")
        caption += f"; left at the input (every image within {UNCHANGED}) on " + ", ".join(same)
    table = Table(title=title, caption=caption)
    for col in ("test set", "input PSNR", "PSNR (dB)", "gain", "input SSIM", "SSIM"):
        table.add_column(col, justify="right")
    for label, s in summary.items():
        table.add_row(
            label,
            f"{s['input_psnr']:.2f}",
            f"{s['psnr']:.2f}",
            _gain(s["psnr"] - s["input_psnr"]),
            f"{s['input_ssim']:.4f}",
            f"{s['ssim']:.4f}",
        )
    table.add_row(
        "mean",
        f"{payload['mean_input_psnr']:.2f}",
        f"{payload['mean_psnr']:.2f}",
        f"{payload['mean_gain']:+.2f}",
        f"{payload['mean_input_ssim']:.4f}",
        f"{payload['mean_ssim']:.4f}",
        end_section=False,
    )
    return table


def models_table(infos: list[Any]) -> Table:
    """Registered networks: name, size, parameter count, description."""
    table = Table(title="models")
    for col in ("name", "size", "parameters", "description"):
        table.add_column(col)
    for info in infos:
        table.add_row(info.name, info.size, f"{info.params:,}", info.description)
    return table


class PruneDrawer:
    """rich progress for a run: one bar per training, a table after each round."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} steps/s"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self.task: Any = None
        self.history: list[dict] = []

    def first_line(self, plan: Any, target: Path) -> None:
        """What will run, on what, for how long, and where (and, under torchrun, how the batch is split)."""
        expected = f"~{duration(plan.expected_seconds)}" if plan.expected_seconds is not None else "unknown"
        data = "built-in sample (scikit-image photos)" if plan.recipe == "sample" else f"{plan.recipe} at {plan.data}"
        resumed = f", resuming after round {plan.resumed_from_round}" if plan.resumed_from_round >= 0 else ""
        if plan.extended_from is not None:
            resumed += f" (extended from {plan.extended_from} to {plan.rounds} rounds)"
        method = f", method {plan.method}" if plan.method != "imp" else ""
        threads = (
            f" ({plan.threads} thread{'s' if plan.threads != 1 else ''}: {plan.threads_reason})" if plan.threads else ""
        )
        out.print(
            f"lotteryir prune: recipe {data}, model {plan.model}/{plan.size} ({plan.params / 1e6:.2f}M params), "
            f"device {plan.device}{threads}{method}, {plan.trainings} trainings x {plan.steps_per_training} steps"
            f"{resumed}; "
            f"expected duration {expected}; run directory {target}",
            highlight=False,
            soft_wrap=True,
        )
        if plan.rebuild:
            out.print(f"rebuilding missing files: {', '.join(plan.rebuild)}", highlight=False, soft_wrap=True)
        if plan.world_size > 1:
            out.print(
                f"DistributedDataParallel: {plan.world_size} processes ({plan.backend}); global batch "
                f"{plan.batch_size} = {plan.world_size} ranks x {plan.batch_per_rank}; lr {plan.lr:g} on the "
                f"schedule of one process with batch {plan.batch_size}",
                highlight=False,
                soft_wrap=True,
            )

    def callbacks(self) -> Any:
        """The run's callbacks that draw into this progress display."""
        from ..runs import RunCallbacks

        return RunCallbacks(
            on_train_start=self._start, on_step=self._step, on_evaluate=self._eval, on_round_end=self._end
        )

    def _start(self, r: int, density: float, kind: str, total: int) -> None:
        label = "dense" if r == 0 else f"density {density:.3f}"
        what = "" if kind == "ticket" else f" [{kind}]"
        self.task = self.progress.add_task(f"round {r} ({label}){what}", total=total, loss="-", rate="-")

    def _step(self, p: Any, kind: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=p.step, loss=f"{p.loss:.4f}", rate=f"{p.steps_per_sec:.2f}")

    def _eval(self, r: int, kind: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=self.progress.tasks[-1].description + " evaluating")

    def _end(self, entry: dict) -> None:
        self.history.append(entry)
        self.progress.console.print(round_table([entry], title=f"round {entry['round']}"))


class EvaluateDrawer:
    """Progress of ``evaluate``: a bar over every image on a terminal, else one line per finished set.

    The lines go to stderr with the elapsed time and an estimate of what is left, so a log or a pipe
    shows the evaluation moving (the table itself comes at the end, on stdout).
    """

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts, self.total = counts, sum(counts.values())
        self.done, self.sets_done = 0, 0
        self.started = time.perf_counter()
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
        )
        self.task = self.bar.add_task("evaluating", total=self.total) if err.is_terminal else None

    def __enter__(self) -> EvaluateDrawer:
        if self.task is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.bar.stop()

    def image(self, label: str, index: int, count: int, score: Any) -> None:
        """The ``progress`` callback of :func:`lotteryir.engine.evaluate`."""
        self.done += 1
        if self.task is not None:
            self.bar.update(self.task, completed=self.done, description=f"evaluating {label}")
            return
        if index + 1 < count:
            return
        self.sets_done += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * (self.total - self.done)
        err.print(
            f"{label}: {count} images done; {self.sets_done} of {len(self.counts)} sets, elapsed {duration(elapsed)}"
            + (f", about {duration(left)} left" if self.done < self.total else ""),
            highlight=False,
            soft_wrap=True,
        )
