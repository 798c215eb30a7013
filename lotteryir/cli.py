"""The lotteryir command line: a thin typer + rich shell over the Python API."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(
    name="lotteryir",
    help="Find lottery tickets (sparse subnetworks that train to full quality) in image-restoration networks.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Piped output (logs, CI, README snippets) gets room for the round table instead of 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)
_DEBUG = False
_MODEL_HELP = (
    "Network: a name from `lotteryir models`, or your own as package.module:factory or "
    "path/to/file.py:factory (called with no arguments)."
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors (may also follow the command)."),
) -> None:
    """lotteryir: iterative magnitude pruning for MIR-L / PromptIR, Restormer, or your own network."""


# --------------------------------------------------------------------------- prune
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir prune --model mirl --rounds 3                # built-in sample data, CPU-sized\n\n"
        "  lotteryir prune --preset paper --data /data/mirl       # the MIR-L paper's recipe\n\n"
        "  lotteryir prune --model restormer --recipe denoise --data /data --rewind step:500 --controls\n\n"
        "  torchrun --nproc_per_node 4 -m lotteryir prune --preset paper --data /data/mirl   # 4 GPUs, DDP\n\n"
        "Re-running the same command with the same --out resumes where it stopped."
    )
)
def prune(
    model: str = typer.Option("mirl", help=_MODEL_HELP),
    size: str | None = typer.Option(None, help="Model size (default: tiny on the sample recipe, else full)."),
    recipe: str = typer.Option("sample", help="Data recipe: see `lotteryir recipes`."),
    data: Path | None = typer.Option(None, help="Data root of the recipe (not needed for sample)."),
    data_path: list[str] = typer.Option(
        [], "--data-path", help="Override one recipe path, KEY=PATH (e.g. derain_train=/x). Repeatable."
    ),
    tasks: str | None = typer.Option(None, help="Comma-separated tasks (default: all of the recipe's)."),
    rounds: int | None = typer.Option(None, help="Pruning rounds after the dense round 0."),
    target_density: float | None = typer.Option(None, help="Prune until at most this fraction of weights remains."),
    rate: float = typer.Option(0.2, help="Fraction of the remaining weights pruned per round, in (0, 1)."),
    scope: str = typer.Option("global", help="global | layerwise | random."),
    rewind: str = typer.Option("init", help="init | step:K | none."),
    epochs: int | None = typer.Option(None, help="Epochs per round (default 120 on real data)."),
    steps: int | None = typer.Option(None, help="Optimizer steps per round (default on sample data: 300)."),
    batch_size: int = typer.Option(8, help="Global batch size (under torchrun split evenly across the processes)."),
    patch_size: int | None = typer.Option(None, help="Training patch size (default 64; 48 on sample data)."),
    lr: float | None = typer.Option(None, help="AdamW learning rate (default 2e-4; on sample data the tuned default)."),
    loss: str | None = typer.Option(None, help="Training loss: l1 (the paper's, the default) or psnr."),
    init: str | None = typer.Option(
        None,
        help="default (as the network's builder draws it) or identity (last conv "
        "at zero: starts as the identity; the default on sample data).",
    ),
    seed: int = typer.Option(0, help="Seed for initialization, data order and controls."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)."),
    out_dir: Path | None = typer.Option(None, "--out", help="Run directory (default runs/<model>-<size>-<recipe>)."),
    controls: bool = typer.Option(
        False, "--controls", help="Also train random-reinit and random-prune controls each round."
    ),
    preset: str | None = typer.Option(None, help="'paper': the MIR-L paper's settings (needs --data)."),
    checkpoint_every: int = typer.Option(50, help="Optimizer steps between mid-round checkpoints."),
    num_workers: int = typer.Option(0, help="DataLoader worker processes."),
    threads: str = typer.Option(
        "auto", help="CPU threads: auto (the cores idle at the start; a resumed run keeps its count) or N."
    ),
) -> None:
    """Run (or resume) an iterative-magnitude-pruning search and save every round.

    Under torchrun each process trains a DistributedDataParallel replica; rank 0 alone writes and draws.
    """
    from .engine.distributed import env_rank
    from .models import register_import_path
    from .models.external import label as model_label
    from .runs import PruningRun, RunCallbacks, RunConfig

    paths = _parse_paths(data_path)
    model = register_import_path(model)  # typed here: the one kind of name lotteryir may import
    config = RunConfig(
        model=model,
        size=size,
        recipe=recipe,
        data=str(data) if data else None,
        data_paths=paths,
        tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None,
        rounds=rounds,
        target_density=target_density,
        rate=rate,
        scope=scope,
        rewind=rewind,
        epochs=epochs,
        steps=steps,
        batch_size=batch_size,
        patch_size=patch_size,
        lr=lr,
        loss=loss,
        init=init,
        seed=seed,
        controls=["random_reinit", "random_prune"] if controls else [],
        device=device,
        num_workers=num_workers,
        checkpoint_every=checkpoint_every,
        preset=preset,
        threads=_threads_option(threads),
    ).resolved()
    target = out_dir or Path("runs") / f"{model_label(config.model)}-{config.size}-{config.recipe}"
    stop = threading.Event()
    main_rank = env_rank() == 0  # the process group starts inside the run; torchrun's RANK says who draws
    drawer = _PruneDrawer()
    # The run holds the directory's lock from here until run() returns (or this process dies).
    run = PruningRun(target, config, drawer.callbacks() if main_rank else RunCallbacks(), should_stop=stop.is_set)
    plan = run.plan(estimate=main_rank)
    if main_rank:
        drawer.first_line(plan, target)

    def _interrupt(signum, frame):  # first Ctrl-C: checkpoint and stop; second: hard stop
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if main_rank:
            err.print("[yellow]stopping after the current step (checkpointing); Ctrl-C again to abort[/]")

    previous = signal.signal(signal.SIGINT, _interrupt)
    try:
        with drawer.progress if main_rank else contextlib.nullcontext():
            history = run.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    if not main_rank:
        return
    out.print(_round_table(history, title=f"{target}: finished"))
    out.print(
        f"report figure: {target / 'report.png'}   export: lotteryir export {target} --round N -o ticket.safetensors"
    )


def _threads_option(value: str) -> int | None:
    """--threads: 'auto' -> None (decided by the run), else a positive integer."""
    if value.strip().lower() == "auto":
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise typer.BadParameter(f"--threads takes 'auto' or a positive integer, got {value!r}")
    return int(value)


def _use_threads(value: str) -> None:
    """Apply --threads for evaluate/restore."""
    from .engine.threads import apply_threads, resolve_threads

    count = _threads_option(value)
    apply_threads(resolve_threads("auto" if count is None else count))


def _parse_paths(items: list[str]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"--data-path takes KEY=PATH, got {item!r}")
        paths[key] = int(value) if value.isdigit() else value  # e.g. max_images=2 for the sample recipe
    return paths


class _PruneDrawer:
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
        self.task = None
        self.history: list[dict] = []

    def first_line(self, plan, target: Path) -> None:
        expected = f"~{_duration(plan.expected_seconds)}" if plan.expected_seconds is not None else "unknown"
        data = "built-in sample (scikit-image photos)" if plan.recipe == "sample" else f"{plan.recipe} at {plan.data}"
        resumed = f", resuming after round {plan.resumed_from_round}" if plan.resumed_from_round >= 0 else ""
        if plan.extended_from is not None:
            resumed += f" (extended from {plan.extended_from} to {plan.rounds} rounds)"
        threads = (
            f" ({plan.threads} thread{'s' if plan.threads != 1 else ''}: {plan.threads_reason})" if plan.threads else ""
        )
        out.print(
            f"lotteryir prune: recipe {data}, model {plan.model}/{plan.size} ({plan.params / 1e6:.2f}M params), "
            f"device {plan.device}{threads}, {plan.trainings} trainings x {plan.steps_per_training} steps{resumed}; "
            f"expected duration {expected}; run directory {target}",
            highlight=False,
            soft_wrap=True,
        )
        if plan.world_size > 1:
            out.print(
                f"DistributedDataParallel: {plan.world_size} processes ({plan.backend}); global batch "
                f"{plan.batch_size} = {plan.world_size} ranks x {plan.batch_per_rank}; lr {plan.lr:g} on the "
                f"schedule of one process with batch {plan.batch_size}",
                highlight=False,
                soft_wrap=True,
            )

    def callbacks(self):
        from .runs import RunCallbacks

        return RunCallbacks(
            on_train_start=self._start, on_step=self._step, on_evaluate=self._eval, on_round_end=self._end
        )

    def _start(self, r: int, density: float, kind: str, total: int) -> None:
        label = "dense" if r == 0 else f"density {density:.3f}"
        what = "" if kind == "ticket" else f" [{kind}]"
        self.task = self.progress.add_task(f"round {r} ({label}){what}", total=total, loss="-", rate="-")

    def _step(self, p, kind: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=p.step, loss=f"{p.loss:.4f}", rate=f"{p.steps_per_sec:.2f}")

    def _eval(self, r: int, kind: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=self.progress.tasks[-1].description + " evaluating")

    def _end(self, entry: dict) -> None:
        self.history.append(entry)
        self.progress.console.print(_round_table([entry], title=f"round {entry['round']}"))


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_SHORT = {
    "denoise_15": "σ15",
    "denoise_25": "σ25",
    "denoise_50": "σ50",
    "derain": "rain",
    "dehaze": "haze",
    "web": "web",
}


def _short(label: str) -> str:
    task, _, dataset = label.partition("/")
    name = _SHORT.get(task, task)
    return name if dataset in ("", "sample") else f"{name} {dataset}"


def _input_row(history: list[dict]) -> dict[str, dict[str, float]]:
    """Per-set scores of the degraded inputs (the same in every round; the latest round's are used)."""
    for h in reversed(history):
        ev = h.get("eval", {})
        if ev and all("input_psnr" in v for v in ev.values()):
            return {label: {"psnr": v["input_psnr"], "ssim": v["input_ssim"]} for label, v in ev.items()}
    return {}


def _worse_than_input(ev: dict[str, dict[str, float]]) -> list[str]:
    """Test sets on which the restorer scores below its own degraded input."""
    return [label for label, v in ev.items() if "input_psnr" in v and v["psnr"] < v["input_psnr"]]


def _evaluate_caption(summary: dict[str, dict[str, float]]) -> str:
    worse = _worse_than_input(summary)
    if not worse:
        return "input = the degraded images themselves; the restorer beats them on every test set"
    return "input = the degraded images themselves; WORSE than the input on " + ", ".join(worse)


def _round_table(history: list[dict], title: str = "") -> Table:
    """Rounds as rows under an "input" row: density, weights left, PSNR per test set, mean PSNR, gain, SSIM,
    controls, time.

    A PSNR below the degraded input's is red, and a line under the table names those sets.
    """
    labels = sorted({label for h in history for label in h.get("eval", {})})
    kinds = sorted({k for h in history for k in h.get("controls", {})})
    inputs = _input_row(history)
    notes = []
    for h in history:
        worse = _worse_than_input(h.get("eval", {}))
        if worse:
            notes.append(
                f"round {h['round']} is worse than its input on "
                + ", ".join(f"{_short(l)} ({h['eval'][l]['psnr'] - h['eval'][l]['input_psnr']:+.2f} dB)" for l in worse)
            )
    caption = "PSNR in dB per test set; gain = mean PSNR minus the degraded input's; `report --json` has SSIM per set"
    if inputs and not notes:
        caption += "\nevery round beats the degraded input on every test set"
    table = Table(title=title, caption="\n".join([caption, *notes]), pad_edge=False)
    for col in [
        "round",
        "density",
        "left",
        *map(_short, labels),
        "mean PSNR",
        "gain",
        "SSIM",
        *[k.replace("random_", "") for k in kinds],
        "time",
    ]:
        table.add_column(col, justify="right", no_wrap=True)
    if inputs:
        mean_in = statistics.fmean(v["psnr"] for v in inputs.values())
        table.add_row(
            "input",
            "",
            "",
            *[f"{inputs[l]['psnr']:.2f}" if l in inputs else "-" for l in labels],
            f"{mean_in:.2f}",
            "",
            f"{statistics.fmean(v['ssim'] for v in inputs.values()):.4f}",
            *["" for _ in kinds],
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
            "-" if gain is None else (f"[red]{gain:+.2f}[/]" if gain < 0 else f"{gain:+.2f}"),
            f"{h['mean_ssim']:.4f}" if h.get("mean_ssim") is not None else "-",
            *ctrl,
            _duration(h.get("seconds")),
        )
    return table


# --------------------------------------------------------------------------- sources
def _load_source(source: Path, round: int | None, allow_nonfinite: bool = False, model: str | None = None):
    """A run directory (its round's ticket), a compact ticket, or a published checkpoint."""
    from .checkpoints import load_checkpoint
    from .models import refuse_from_file, register_import_path
    from .models.external import canonical_name
    from .runs import is_run_dir, read_config, round_ticket_path

    if model is not None:
        model = register_import_path(model)  # typed by the user, so it may be imported
    if is_run_dir(source):
        config = read_config(source)
        if model is None:
            refuse_from_file(config.model, str(source))
        elif model != canonical_name(config.model):
            raise ValueError(f"{source} is a run of model {config.model!r}, not {model!r}")
        ticket = round_ticket_path(source, round)
        return load_checkpoint(ticket, config.model, config.size, allow_nonfinite=allow_nonfinite), config
    if round is not None:
        raise typer.BadParameter("--round only applies to a run directory")
    if not source.exists():
        raise FileNotFoundError(f"no such checkpoint or run directory: {source}")
    if source.is_dir():
        raise ValueError(f"{source} is a directory but not a lotteryir run (no config.json)")
    return load_checkpoint(source, model, allow_nonfinite=allow_nonfinite), None


_ALLOW_NONFINITE = typer.Option(
    False, "--allow-nonfinite", help="Use weights that hold NaN or infinity (refused by default)."
)


def _json(payload: Any) -> str:
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


# --------------------------------------------------------------------------- evaluate
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir evaluate runs/mirl-tiny-sample --round 3\n\n"
        "  lotteryir evaluate ticket.safetensors --json\n\n"
        "  lotteryir evaluate mirl_pruned.ckpt --recipe mirl --data /data/mirl --save-images restored/"
    )
)
def evaluate(
    source: Path = typer.Argument(
        ..., help="Run directory, exported ticket, or a MIR-L/PromptIR/Restormer checkpoint."
    ),
    round: int | None = typer.Option(None, help="Round of a run directory (default: the last finished)."),
    recipe: str | None = typer.Option(None, help="Test data recipe (default: the run's, else sample)."),
    data: Path | None = typer.Option(None, help="Data root of the recipe."),
    data_path: list[str] = typer.Option([], "--data-path", help="Override one recipe path, KEY=PATH. Repeatable."),
    tasks: str | None = typer.Option(None, help="Comma-separated tasks (default: all)."),
    save_images: Path | None = typer.Option(None, "--save-images", help="Write restored images here."),
    tile: int | None = typer.Option(None, help="Restore in tiles of this size (large images)."),
    y_channel: bool = typer.Option(
        False, "--y-channel", help="Score on the Y channel (BT.601), as Restormer's deraining."
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, ..."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON (NaN as null)."),
    threads: str = typer.Option("auto", help="CPU threads: auto (the cores idle now) or N."),
    allow_nonfinite: bool = _ALLOW_NONFINITE,
    overwrite: bool = typer.Option(False, "--overwrite", help="Write --save-images into a folder that is not empty."),
    model: str | None = typer.Option(None, help="The network, when it is your own: " + _MODEL_HELP),
) -> None:
    """Per-task PSNR/SSIM of a run's round, a ticket, or a published checkpoint, beside the degraded input's."""
    from .data import get_recipe
    from .data.recipes import normalize_options
    from .engine import evaluate as run_eval
    from .engine import pick_device
    from .runs import check_output_dir, mean_scores

    if save_images is not None:
        check_output_dir(save_images, overwrite, "--save-images")
    loaded, config = _load_source(source, round, allow_nonfinite, model)
    name = recipe or (config.recipe if config else "sample")
    root = str(data) if data else (config.data if config and not recipe else None)
    paths = _parse_paths(data_path) if data_path else (config.data_paths if config and not recipe else {})
    try:
        paths = normalize_options(name, root, paths)
    except ValueError as e:
        raise ValueError(f"--data-path: {e}") from e
    rec = get_recipe(name, root=root, **paths)
    problems = rec.check()
    if problems:
        raise ValueError(f"recipe {name!r} cannot run: " + "; ".join(problems[:5]))
    selected = (
        [t.strip() for t in tasks.split(",")]
        if tasks
        else (config.tasks if config and config.tasks and not recipe else None)
    )
    dev = pick_device(device)
    if dev.type == "cpu":
        _use_threads(threads)
    result = run_eval(
        loaded.model.to(dev),
        rec.test_sets(tasks=selected),
        tile=tile,
        y_channel=y_channel,
        save_dir=save_images,
        device=dev,
    )
    summary = result.summary()
    psnr, ssim = mean_scores(summary)
    input_psnr, input_ssim = mean_scores(summary, of="input")
    payload = {
        "source": str(source),
        "model": loaded.name,
        "size": loaded.size,
        "density": loaded.mask.density,
        "recipe": name,
        "sets": summary,
        "mean_psnr": psnr,
        "mean_ssim": ssim,
        "mean_input_psnr": input_psnr,
        "mean_input_ssim": input_ssim,
        "mean_gain": psnr - input_psnr,
        "worse_than_input": _worse_than_input(summary),
    }
    if as_json:
        print(_json(payload))
        return
    table = Table(
        title=f"{source} ({loaded.name}/{loaded.size}, density {loaded.mask.density:.4f})",
        caption=_evaluate_caption(summary),
    )
    for col in ("test set", "input PSNR", "PSNR (dB)", "gain", "input SSIM", "SSIM"):
        table.add_column(col, justify="right")
    for label, s in summary.items():
        gain = s["psnr"] - s["input_psnr"]
        table.add_row(
            label,
            f"{s['input_psnr']:.2f}",
            f"{s['psnr']:.2f}",
            f"[red]{gain:+.2f}[/]" if gain < 0 else f"{gain:+.2f}",
            f"{s['input_ssim']:.4f}",
            f"{s['ssim']:.4f}",
        )
    table.add_row(
        "mean",
        f"{input_psnr:.2f}",
        f"{psnr:.2f}",
        f"{psnr - input_psnr:+.2f}",
        f"{input_ssim:.4f}",
        f"{ssim:.4f}",
        end_section=False,
    )
    out.print(table)
    if save_images:
        out.print(f"restored images: {save_images}")


# --------------------------------------------------------------------------- restore
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir restore ticket.safetensors photo.jpg -o restored/\n\n"
        "  lotteryir restore runs/mirl-tiny-sample big.png -o out/ --tile 256"
    )
)
def restore(
    source: Path = typer.Argument(..., help="Checkpoint, exported ticket or run directory."),
    images: list[Path] = typer.Argument(..., help="Images to restore."),
    output: Path = typer.Option(..., "-o", "--output", help="Output directory."),
    round: int | None = typer.Option(None, help="Round of a run directory (default: the last finished)."),
    tile: int | None = typer.Option(None, help="Tile size; default: tiles of 512 for images above 1024x1024."),
    overlap: int = typer.Option(32, help="Tile overlap in pixels."),
    device: str | None = typer.Option(None, help="cpu, cuda, ..."),
    threads: str = typer.Option("auto", help="CPU threads: auto (the cores idle now) or N."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace restored images from an earlier call."),
    allow_nonfinite: bool = _ALLOW_NONFINITE,
    sparse: bool = typer.Option(False, "--sparse", help="CPU: run pruned 1x1 convolutions as sparse (CSR) products."),
    model: str | None = typer.Option(None, help="The network, when it is your own: " + _MODEL_HELP),
) -> None:
    """Restore your own images (any size; tiled when large) to <output>/<name>.png.

    Nothing is written over an input, an earlier output of the same call, or (without --overwrite)
    an existing file. A bad image is reported and skipped; the exit code is 1 if any failed.
    """
    from .data import read_image, write_image
    from .engine import pick_device, restore_image
    from .runs import restore_targets

    pairs = restore_targets(images, output, overwrite)
    loaded, _ = _load_source(source, round, allow_nonfinite, model)
    dev = pick_device(device if device or not sparse else "cpu")
    if dev.type == "cpu":
        _use_threads(threads)
    model = loaded.model.to(dev).eval()
    if sparse:
        model = _sparse_model(model, dev)
    failed = 0
    for path, target in pairs:
        try:
            img = read_image(path)
            use_tile = tile if tile is not None else (512 if img.shape[1] * img.shape[2] > 1024 * 1024 else None)
            restored = restore_image(model, img, tile=use_tile, overlap=overlap, device=dev).clamp(0, 1)
            write_image(restored.cpu(), target)
        except Exception as e:  # noqa: BLE001 - one bad image must not cost the others
            failed += 1
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            err.print(
                f"error: {message if str(path) in message else f'{path}: {message}'}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            continue
        out.print(f"{path} -> {target}" + (f" (tiles of {use_tile})" if use_tile else ""), highlight=False)
    if failed:
        if len(pairs) > 1:
            err.print(
                f"error: {failed} of {len(pairs)} images failed (listed above); the others were restored",
                highlight=False,
                markup=False,
            )
        raise typer.Exit(1)


def _sparse_model(model, dev):
    from .deploy import sparsify
    from .deploy.sparse import MAX_DENSITY

    if dev.type != "cpu":
        raise typer.BadParameter(f"--sparse runs on the CPU, not {dev}; pass --device cpu")
    sparse = sparsify(model)
    done, kept = sparse.sparsify_report.replaced, sparse.sparsify_report.dense
    dense = f"; {len(kept)} denser than {MAX_DENSITY:g} stay dense" if kept else ""
    fused = len(sparse.sparsify_report.fused)
    out.print(
        f"sparse: {len(done)} of {len(done) + len(kept)} 1x1 convolutions/linears run as CSR products{dense}; "
        f"{fused} 1x1+depthwise pairs computed in row bands",
        highlight=False,
    )
    return sparse


# --------------------------------------------------------------------------- report
@app.command(epilog="Example:\n\n  lotteryir report runs/mirl-tiny-sample --json")
def report(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON (NaN as null)."),
    figure: Path | None = typer.Option(
        None, "--figure", help="Also draw the figure to this PNG file (outside the run)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --figure file."),
) -> None:
    """The round table (density, parameters left, per-task PSNR/SSIM, controls, time) and the figure.

    Reads the run without writing into it, so it works while `prune` runs and on a read-only copy;
    `prune` keeps the run's own report.png up to date.
    """
    from .runs import RunLayout, check_output, read_config, read_history
    from .runs.figures import write_report_figure

    config = read_config(run_dir)
    history = read_history(run_dir)
    if figure is not None:
        check_output(figure, overwrite, "--figure")
        if history:
            write_report_figure(history, figure, title=f"{config.model}/{config.size}")
    if as_json:
        print(_json({"run": str(run_dir), "config": config.to_dict(), "rounds": history}))
        return
    if not history:
        out.print(f"{run_dir}: no finished round yet")
        return
    out.print(_round_table(history, title=f"{run_dir} ({config.model}/{config.size}, {config.recipe})"))
    own = RunLayout(run_dir).report
    if figure is not None:
        out.print(f"figure: {figure}", highlight=False)
    elif own.is_file():
        out.print(f"figure: {own}", highlight=False)
    else:
        out.print(f"{run_dir} has no report.png yet; --figure PATH draws one elsewhere", highlight=False)


# --------------------------------------------------------------------------- export
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir export runs/mirl-tiny-sample --round 10 -o ticket.safetensors --dtype fp16\n\n"
        "  lotteryir export ticket.safetensors --format onnx -o model.onnx"
    )
)
def export(
    run_dir: Path = typer.Argument(..., help="Run directory (with --format onnx also a ticket or checkpoint)."),
    round: int | None = typer.Option(None, help="Round to export (default: the last finished)."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write (.safetensors ticket or .onnx)."),
    dtype: str = typer.Option("fp32", help="Surviving values as fp32 (exact) or fp16/bf16."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file (never one inside a run)."),
    fmt: str = typer.Option("ticket", "--format", help="ticket (compact safetensors) or onnx (sparse initializers)."),
    model: str | None = typer.Option(None, help="With --format onnx, the network when it is your own: " + _MODEL_HELP),
) -> None:
    """Write a round's compact ticket (entropy-coded mask + surviving values), or the network as ONNX."""
    from .runs import export_run

    if fmt == "onnx":
        return _export_onnx(run_dir, round, output, dtype, overwrite, model)
    if fmt != "ticket":
        raise typer.BadParameter(f"--format must be ticket or onnx, got {fmt!r}")

    meta = export_run(run_dir, output, round=round, dtype=dtype, overwrite=overwrite)
    size = output.stat().st_size
    out.print(
        f"wrote {output} ({size / 1e6:.2f} MB; {meta['model']}/{meta['size']}, round {meta['round']}, "
        f"density {meta['density']:.4f}, values {dtype})",
        highlight=False,
    )


def _export_onnx(
    source: Path, round: int | None, output: Path, dtype: str, overwrite: bool, model: str | None = None
) -> None:
    from .deploy import compare_onnx, to_onnx
    from .runs import check_output

    if dtype != "fp32":
        raise typer.BadParameter("--dtype applies to tickets; ONNX files store float32")
    check_output(output, overwrite)
    loaded, _ = _load_source(source, round, model=model)
    meta = {"lotteryir_model": f"{loaded.name}/{loaded.size}", "density": f"{loaded.mask.density:.6f}"}
    done = to_onnx(loaded.model, output, metadata=meta)
    out.print(
        f"wrote {output} ({done.bytes / 1e6:.2f} MB; stored densely {done.dense_bytes / 1e6:.2f} MB; "
        f"{done.sparse_tensors} sparse initializers; {loaded.name}/{loaded.size}, density "
        f"{loaded.mask.density:.4f}; opset {done.opset}, any height and width >= {done.metadata['multiple']})",
        highlight=False,
        soft_wrap=True,
    )
    diffs = compare_onnx(loaded.model, output, sizes=((64, 64), (40, 56)))
    worst = max(diffs.values())
    if worst > 1e-4:
        raise RuntimeError(f"{output}: onnxruntime differs from torch by {worst:.2e} (> 1e-4); please report this")
    out.print(
        f"checked with onnxruntime: max |difference| to torch {worst:.1e} on {', '.join(diffs)} images", highlight=False
    )


# --------------------------------------------------------------------------- web
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir web ticket.safetensors -o site/ --serve\n\n"
        "  lotteryir web runs/mirl-tiny-sample -o site/ --runtime node_modules/onnxruntime-web/dist   # offline"
    )
)
def web(
    source: Path = typer.Argument(..., help="Ticket, checkpoint or run directory."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write the site into."),
    round: int | None = typer.Option(None, help="Round of a run directory (default: the last finished)."),
    runtime: Path | None = typer.Option(None, help="onnxruntime-web's dist folder, copied into the site (no CDN)."),
    runtime_url: str | None = typer.Option(None, "--runtime-url", help="Where the page loads onnxruntime-web from."),
    tile: int = typer.Option(256, help="Images larger than this are restored in tiles of this size."),
    overlap: int = typer.Option(32, help="Tile overlap in pixels."),
    serve: bool = typer.Option(False, "--serve", help="Then serve the site on 127.0.0.1 until Ctrl-C."),
    port: int = typer.Option(8000, help="Port for --serve."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a folder that is not empty."),
    model: str | None = typer.Option(None, help="The network, when it is your own: " + _MODEL_HELP),
) -> None:
    """A static web page that restores images in the visitor's browser (onnxruntime-web, WebAssembly)."""
    from .deploy import DEFAULT_RUNTIME, build_site, serve_site
    from .runs import check_output_dir

    check_output_dir(output, overwrite)
    loaded, _ = _load_source(source, round, model=model)
    site = build_site(
        loaded.model,
        output,
        name=f"{loaded.name}/{loaded.size}",
        density=loaded.mask.density,
        runtime_dir=runtime,
        runtime_url=runtime_url or DEFAULT_RUNTIME,
        tile=tile,
        overlap=overlap,
    )
    out.print(
        f"wrote {output}: index.html, restore.js, config.json, model.onnx ({site.export.bytes / 1e6:.2f} MB); "
        f"runtime from {site.config['runtime']}",
        highlight=False,
        soft_wrap=True,
    )
    if not serve:
        return
    server = serve_site(output, port=port)
    out.print(f"serving {output} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# --------------------------------------------------------------------------- listings
@app.command()
def models() -> None:
    """Available networks and sizes with parameter counts."""
    from .models import available

    table = Table(title="models")
    for col in ("name", "size", "parameters", "description"):
        table.add_column(col)
    for info in available():
        table.add_row(info.name, info.size, f"{info.params:,}", info.description)
    out.print(table)


@app.command()
def recipes() -> None:
    """Available data recipes: tasks and expected folder layouts."""
    from .data import available_recipes

    for info in available_recipes():
        out.print(f"[bold]{info.name}[/]: {info.description}")
        out.print(f"  tasks: {', '.join(info.tasks)}", highlight=False)
        for line in info.layout.splitlines():
            out.print(f"  {line}", highlight=False, markup=False)
        out.print()


# --------------------------------------------------------------------------- entry point
def _show_pruning_warnings() -> None:
    """Pruning warnings (layer collapse, ...) as one line each, from rank 0 only; others as Python prints them."""
    import warnings

    from .engine.distributed import env_rank
    from .pruning import PruningWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, PruningWarning):
            return default(message, category, filename, lineno, file, line)
        if env_rank() == 0:  # every rank prunes the same way: one report is enough
            err.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear error line and a non-zero exit instead of a traceback."""
    global _DEBUG
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = "--debug" in args
    args = [a for a in args if a != "--debug"]
    logging.basicConfig(
        level=logging.DEBUG if _DEBUG else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _show_pruning_warnings()
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
        from .engine import TrainingStopped

        if _DEBUG:
            raise
        from .engine.distributed import env_rank

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


if __name__ == "__main__":
    sys.exit(main())
