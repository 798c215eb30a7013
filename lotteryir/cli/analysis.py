"""``stability`` and ``compare``: what a run's tickets say beyond their PSNR (the analysis package, drawn)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .app import app
from .options import AsJson, Device, OwnModel, Round
from .render import json_text, out, short

AUTO_REWIND = "step:auto"


def parse_steps(value: str) -> list[int]:
    """'0,20,60' -> [0, 20, 60]; anything but non-negative integers is refused by name."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise typer.BadParameter(f"--rewind-steps takes comma-separated optimizer steps (0,20,60), got {value!r}")
    return [int(p) for p in parts]


def use_model(model: str | None, *runs: Path) -> None:
    """Register the user's own network (typed here, so it may be imported); it must be the runs' network."""
    if model is None:
        return
    from ..models import register_import_path
    from ..models.external import canonical_name
    from ..runs import read_config

    name = register_import_path(model)
    for run in runs:
        saved = read_config(run).model
        if canonical_name(saved) != name:
            raise ValueError(f"{run} is a run of model {saved!r}, not {model!r}")


def resolve_rewind(target: Path) -> str:
    """``--rewind step:auto``: the smallest stable step stored in the run ``target`` (its ``--out``)."""
    from ..analysis import resolve_auto_rewind
    from ..runs import is_run_dir, read_config, read_history

    finished = is_run_dir(target) and bool(read_history(target))
    return resolve_auto_rewind(target, read_config(target).rewind if finished else None)


# --------------------------------------------------------------------------- stability
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir stability runs/mirl-tiny-sample --round 2 --rewind-steps 0,20,60,150\n\n"
        "  lotteryir prune ... --rewind step:auto    # then rewinds to the smallest stable step found here"
    )
)
def stability(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    round: Round = None,
    rewind_steps: Annotated[
        str, typer.Option("--rewind-steps", help="Steps k of round 0 to start the two copies from, e.g. 0,20,60,150.")
    ] = "0",
    steps: Annotated[
        int | None, typer.Option("--steps", help="Steps each copy trains (default: a round of the run minus k).")
    ] = None,
    points: Annotated[int, typer.Option("--points", help="Points on the path, endpoints included (>= 11).")] = 11,
    threshold: Annotated[float, typer.Option("--threshold", help="Largest barrier (dB) that counts as stable.")] = 0.1,
    device: Device = None,
    model: OwnModel = None,
    as_json: AsJson = False,
) -> None:
    """Instability of a round: two copies trained from step k with different data orders, scored on the path.

    Prints the PSNR barrier per test set and of the mean for each k, stores the result in
    RUN/analysis/stability.json (read by `prune --rewind step:auto`) and draws RUN/analysis/stability.png.
    """
    from ..analysis import run_stability
    from ..runs import RunLayout

    use_model(model, run)
    report = run_stability(
        run,
        round,
        parse_steps(rewind_steps),
        steps=steps,
        points=points,
        threshold=threshold,
        device=device,
        on_stage=None if as_json else lambda s: out.print(f"[dim]{s}[/]"),
    )
    if as_json:
        out.print(json_text(report.to_dict()), highlight=False, soft_wrap=True)
        return
    layout = RunLayout(run)
    out.print(stability_table(report, title=f"{run}: round {report.round} (density {report.density:.3g})"))
    k = report.stable_step
    if k is None:
        out.print(f"no rewind step is stable (barrier <= {report.threshold:g} dB); try later steps")
    else:
        out.print(f"smallest stable rewind step: {k}  ->  --rewind {'init' if k == 0 else f'step:{k}'}")
    out.print(f"stored: {layout.stability}   figure: {layout.stability_figure}")


def stability_table(report: Any, title: str = "") -> Table:
    """One row per rewind step k: copy length, barrier per test set, barrier of the mean, endpoints, lowest point."""
    labels = sorted(report.input_psnr) or sorted({l for p in report.paths.values() for l in p.psnr})
    table = Table(
        title=title,
        caption=(
            "barrier = max(0, max over alpha of mean(PSNR(0), PSNR(1)) - PSNR(alpha)), dB; "
            f"stable: mean barrier <= {report.threshold:g} dB\nendpoints and lowest: mean PSNR over test sets"
        ),
        pad_edge=False,
    )
    for col in ("k", "steps", *[short(l) for l in labels], "mean", "stable", "endpoints", "lowest"):
        table.add_column(col, justify="right", no_wrap=True)
    if report.input_psnr:
        table.add_row(
            "input", "", *[f"{report.input_psnr[l]:.2f}" for l in labels], f"{report.mean_input_psnr:.2f}",
            "", "", "", style="dim", end_section=True,
        )  # fmt: skip
    for k in sorted(report.paths):
        p = report.paths[k]
        mean = p.mean_psnr
        table.add_row(
            str(k),
            str(report.steps[k]),
            *[_db(p.barriers.get(l, math.nan)) for l in labels],
            _db(p.mean_barrier),
            "yes" if p.mean_barrier <= report.threshold else "no",
            f"{mean[0]:.2f} / {mean[-1]:.2f}",
            f"{min(mean):.2f}",
        )
    return table


def _db(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


# --------------------------------------------------------------------------- compare
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir compare runs/denoise runs/derain --round 3\n\n"
        "  lotteryir compare runs/denoise runs/derain --round 3 --transfer"
    )
)
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run directory A.")],
    run_b: Annotated[Path, typer.Argument(help="Run directory B (same network).")],
    round: Annotated[int | None, typer.Option("--round", help="Round (default: the last both finished).")] = None,
    transfer: Annotated[
        bool,
        typer.Option("--transfer", help="Also train A's ticket (its mask, from A's rewind point) on B's task."),
    ] = False,
    device: Device = None,
    model: OwnModel = None,
    as_json: AsJson = False,
) -> None:
    """Mask overlap of two runs' tickets (IoU of kept weights per tensor and overall) beside two random masks'.

    --transfer trains A's ticket as B trains its own (B's data, recipe, seed), scored on B's test sets.
    """
    from ..analysis import run_overlap, transfer_ticket

    use_model(model, run_a, run_b)
    r, overlap = run_overlap(run_a, run_b, round)
    own = {"a": _own_magnitudes(run_a, r), "b": _own_magnitudes(run_b, r)}
    moved = transfer_ticket(run_a, run_b, r, device=device) if transfer else None
    if as_json:
        payload = {
            "round": r,
            "overlap": overlap.to_dict(),
            "rewind_magnitude": own,
            **({"transfer": moved.to_dict()} if moved else {}),
        }
        out.print(json_text(payload), highlight=False, soft_wrap=True)
        return
    out.print(overlap_table(overlap, title=f"mask overlap, round {r}: A = {run_a}, B = {run_b}"))
    ratio = overlap.iou / overlap.random_iou if overlap.random_iou else math.nan
    out.print(
        f"overall IoU {overlap.iou:.3f}; two random masks at these densities: {overlap.random_iou:.3f} (x{ratio:.2f})"
    )
    if own["a"] and own["b"]:
        # runs from one init share much of their masks through its magnitudes: show how much each ticket is them
        out.print(
            f"each ticket against its own rewind weights' magnitude mask (same per-tensor counts): "
            f"A {own['a']['iou']:.3f}, B {own['b']['iou']:.3f}"
        )
    if moved is not None:
        out.print(transfer_table(moved, run_a, run_b))


def _own_magnitudes(run: Path, round: int) -> dict[str, float] | None:
    """IoU of a run's ticket with its rewind weights' magnitude mask; None for a dense round or no rewind point."""
    from ..analysis import rewind_magnitude_overlap
    from ..runs import RunError

    if round == 0:
        return None
    try:
        _, ov = rewind_magnitude_overlap(run, round)
    except RunError:
        return None
    return {"iou": ov.iou, "random_iou": ov.random_iou}


def overlap_table(overlap: Any, title: str = "") -> Table:
    """Per tensor: size, density in A and in B, IoU, the random masks' IoU, and their ratio; overall last."""
    table = Table(
        title=title,
        caption="IoU = |A ∩ B| / |A ∪ B| of the kept weights; random = E|A ∩ B| / E|A ∪ B| for independent "
        "uniform masks at the same per-tensor densities (a ratio of expectations)",
        pad_edge=False,
    )
    for col in ("tensor", "weights", "density A", "density B", "IoU", "random", "ratio"):
        table.add_column(col, justify="right" if col != "tensor" else "left", no_wrap=True)
    for layer in overlap.layers:
        table.add_row(
            layer.name, str(layer.numel), f"{layer.density_a:.3f}", f"{layer.density_b:.3f}",
            f"{layer.iou:.3f}", f"{layer.random_iou:.3f}", _ratio(layer.iou, layer.random_iou),
        )  # fmt: skip
    total = sum(layer.numel for layer in overlap.layers)
    kept_a = sum(layer.kept_a for layer in overlap.layers) / total if total else 0.0
    kept_b = sum(layer.kept_b for layer in overlap.layers) / total if total else 0.0
    table.add_row(
        "overall", str(total), f"{kept_a:.3f}", f"{kept_b:.3f}", f"{overlap.iou:.3f}", f"{overlap.random_iou:.3f}",
        _ratio(overlap.iou, overlap.random_iou), style="bold",
    )  # fmt: skip
    return table


def _ratio(value: float, baseline: float) -> str:
    return f"x{value / baseline:.2f}" if baseline else "-"


def transfer_table(moved: Any, run_a: Path, run_b: Path) -> Table:
    """B's degraded input, B's own ticket and A's ticket trained on B: PSNR per B test set and the mean."""
    own = moved.own.get("eval", {})
    got = moved.transfer.get("eval", {})
    labels = sorted(got)
    table = Table(
        title=f"transfer, round {moved.round} (density {moved.density:.3g}): A's ticket trained on B's task",
        caption=f"A = {run_a}, B = {run_b}; PSNR in dB on B's test sets",
        pad_edge=False,
    )
    for col in ("", *[short(l) for l in labels], "mean"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_row(
        "B's input", *[f"{got[l]['input_psnr']:.2f}" for l in labels], f"{moved.transfer['mean_input_psnr']:.2f}",
        style="dim",
    )  # fmt: skip
    table.add_row(
        "B's own ticket",
        *[f"{own[l]['psnr']:.2f}" if l in own else "-" for l in labels],
        f"{moved.own.get('mean_psnr') or math.nan:.2f}",
    )
    table.add_row("A's ticket on B", *[f"{got[l]['psnr']:.2f}" for l in labels], f"{moved.transfer['mean_psnr']:.2f}")
    return table
