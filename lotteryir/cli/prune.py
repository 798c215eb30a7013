"""``lotteryir prune``: run or resume a search. Its help states the defaults the configuration really uses."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from ..runs.defaults import (
    DEFAULT_EPOCHS,
    DEFAULT_INIT,
    DEFAULT_LOSS,
    DEFAULT_PATCH,
    DEFAULT_SIZE,
    FIELD_DEFAULTS,
    NO_RETRAINING_BN_BATCHES,
    PAPER_LR,
    SAMPLE_INIT,
    SAMPLE_LOSS,
    SAMPLE_LR,
    SAMPLE_PATCH,
    SAMPLE_SIZE,
    SAMPLE_STEPS,
    SHIPPED_MODELS,
)
from .app import app
from .options import (
    DataPaths,
    DataRoot,
    Device,
    Model,
    Noise,
    RecipeName,
    RunThreads,
    Tasks,
    parse_method_options,
    parse_paths,
    parse_tasks,
    parse_threads,
)
from .render import PruneDrawer, err, out, round_table

_D = FIELD_DEFAULTS  # RunConfig's field defaults, shown by --help as they are
_EPILOG = (
    "Examples:\n\n"
    "  lotteryir prune --model mirl --rounds 3                # built-in sample data, CPU-sized\n\n"
    "  lotteryir prune --preset paper --data /data/mirl       # the MIR-L paper's recipe\n\n"
    "  lotteryir prune --model restormer --recipe denoise --data /data --rewind step:500 --controls\n\n"
    "  lotteryir prune --model nets.py:dncnn --from dncnn25.safetensors --recipe denoise --data /data "
    "--tasks denoise_25 --method lr-rewind --rounds 4   # a trained network: no dense training\n\n"
    "  torchrun --nproc_per_node 4 -m lotteryir prune --preset paper --data /data/mirl   # 4 GPUs, DDP\n\n"
    "Re-running the same command with the same --out resumes where it stopped."
)


def _opt(help: str) -> Any:
    return typer.Option(help=help)


def _both(default: object, sample: object) -> str:
    """A default that may differ on the sample recipe, as help text."""
    return f"{default}" if default == sample else f"{default}; {sample} on sample data"


@app.command(epilog=_EPILOG)
def prune(
    model: Model = _D.model,
    size: Annotated[
        str | None, _opt(f"Model size (default: {SAMPLE_SIZE} on the sample recipe, else {DEFAULT_SIZE}).")
    ] = None,
    recipe: RecipeName = _D.recipe,
    data: DataRoot = None,
    data_path: DataPaths = [],  # noqa: B006 - typer copies it; never mutated
    tasks: Tasks = None,
    noise: Noise = None,
    rounds: Annotated[int | None, _opt("Pruning rounds after the dense round 0.")] = None,
    target_density: Annotated[float | None, _opt("Prune until at most this fraction of weights remains.")] = None,
    rate: Annotated[float, _opt("Fraction of the remaining weights pruned per round, in (0, 1).")] = _D.rate,
    scope: Annotated[str, _opt("global | layerwise | random.")] = _D.scope,
    rewind: Annotated[
        str | None,
        _opt(
            "init | step:K | none | from (the --from weights; the default with --from, else init) | step:auto "
            "(the smallest stable step `lotteryir stability` stored in --out)."
        ),
    ] = None,
    epochs: Annotated[int | None, _opt(f"Epochs per round (default {DEFAULT_EPOCHS} on real data).")] = None,
    steps: Annotated[
        int | None,
        _opt(f"Optimizer steps per round (default {SAMPLE_STEPS} on sample data; on real data --epochs counts)."),
    ] = None,
    batch_size: Annotated[
        int, _opt("Global batch size (under torchrun split evenly across the processes).")
    ] = _D.batch_size,
    patch_size: Annotated[
        int | None, _opt(f"Training patch size (default {DEFAULT_PATCH}; {SAMPLE_PATCH} on sample data).")
    ] = None,
    lr: Annotated[
        float | None, _opt(f"AdamW learning rate (default {PAPER_LR:g}; {SAMPLE_LR:g} on sample data).")
    ] = None,
    loss: Annotated[
        str | None,
        _opt(
            f"Training loss: l1 (the paper's), psnr, mse or charbonnier (default {_both(DEFAULT_LOSS, SAMPLE_LOSS)})."
        ),
    ] = None,
    init: Annotated[
        str | None,
        _opt(
            f"default (as the network's builder draws it) or identity (last conv at zero: starts as the identity). "
            f"Unset: {DEFAULT_INIT}, or {SAMPLE_INIT} for {', '.join(SHIPPED_MODELS)} on sample data."
        ),
    ] = None,
    seed: Annotated[int, _opt("Seed for initialization, data order and controls.")] = _D.seed,
    device: Device = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default runs/<model>-<size>-<recipe>).")
    ] = None,
    controls: Annotated[
        bool, typer.Option("--controls", help="Also train random-reinit and random-prune controls each round.")
    ] = False,
    preset: Annotated[str | None, _opt("'paper': the MIR-L paper's settings (needs --data).")] = None,
    checkpoint_every: Annotated[int, _opt("Optimizer steps between mid-round checkpoints.")] = _D.checkpoint_every,
    num_workers: Annotated[int, _opt("DataLoader worker processes.")] = _D.num_workers,
    threads: RunThreads = "machine",
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the training forward, masks included (compiled once per run, reused by every round).",
        ),
    ] = False,
    log: Annotated[
        str | None,
        _opt(
            "Write training curves under RUN/logs/: csv (steps.csv, rounds.csv, layers.csv) and/or tensorboard "
            "(event files beside them; needs the tensorboard extra), comma-separated."
        ),
    ] = None,
    method: Annotated[
        str,
        _opt(
            "Pruning method: imp | lr-rewind (imp keeping the trained weights) | oneshot | gmp | early-bird | "
            "snip | synflow. All but imp and lr-rewind take --target-density. See docs/methods.md."
        ),
    ] = _D.method,
    method_option: Annotated[
        list[str],
        typer.Option(
            "--method-option",
            help="A method's setting, KEY=VALUE (gmp: start, end, every; early-bird: every, epsilon, patience; "
            "snip: batches; synflow: iterations). Repeatable.",
        ),
    ] = [],  # noqa: B006 - typer copies it; never mutated
    shuffle_within_layers: Annotated[
        bool,
        typer.Option(
            "--shuffle-within-layers",
            help="snip/synflow sanity check: shuffle the mask within each tensor (same per-layer density).",
        ),
    ] = False,
    from_weights: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Start from trained weights (safetensors state dict, lotteryir ticket, Lightning checkpoint or a "
            "torch file read with weights_only): round 0 evaluates them instead of training; the rounds rewind "
            "to them (--rewind from) unless --rewind none. The run records the file's SHA-256.",
        ),
    ] = None,
    dense_round: Annotated[
        str | None,
        _opt(
            "evaluate | train: what round 0 does with the --from weights (default evaluate: no training; train "
            "fine-tunes them for one round first)."
        ),
    ] = None,
    bn_recalibrate: Annotated[
        int | None,
        _opt(
            "Before every evaluation, recompute BatchNorm running statistics on this many training batches "
            f"(0: off; default off, {NO_RETRAINING_BN_BATCHES} when nothing retrains: --steps 0)."
        ),
    ] = None,
) -> None:
    """Run (or resume) an iterative-magnitude-pruning search and save every round.

    Under torchrun each process trains a DistributedDataParallel replica; rank 0 alone writes and draws.
    """
    from ..engine.distributed import env_rank
    from ..models import register_import_path
    from ..models.external import label as model_label
    from ..runs import PruningRun, RunCallbacks, RunConfig
    from .analysis import AUTO_REWIND, resolve_rewind

    paths = parse_paths(data_path, noise)
    model = register_import_path(model)  # typed here: the one kind of name lotteryir may import
    config = RunConfig(
        model=model,
        size=size,
        recipe=recipe or _D.recipe,
        data=str(data) if data else None,
        data_paths=paths,
        tasks=parse_tasks(tasks),
        rounds=rounds,
        target_density=target_density,
        rate=rate,
        scope=scope,
        # step:auto is resolved below, once --out is known.
        rewind=None if rewind is not None and rewind.strip() == AUTO_REWIND else rewind,
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
        threads=parse_threads(threads),
        compile=compile,
        method=method,
        method_options=parse_method_options(method_option),
        shuffle_within_layers=shuffle_within_layers,
        from_weights=str(from_weights) if from_weights is not None else None,
        dense_round=dense_round,
        bn_recalibrate=bn_recalibrate,
    ).resolved()
    target = out_dir or Path("runs") / f"{model_label(config.model)}-{config.size}-{config.recipe}"
    if rewind is not None and rewind.strip() == AUTO_REWIND:
        config = config.replace(rewind=resolve_rewind(target))
    stop = threading.Event()
    main_rank = env_rank() == 0  # the process group starts inside the run; torchrun's RANK says who draws
    drawer = PruneDrawer()
    # The run holds the directory's lock from here until run() returns (or this process dies).
    callbacks = drawer.callbacks() if main_rank else RunCallbacks()
    run = PruningRun(target, config, callbacks, should_stop=stop.is_set, log=log)
    plan = run.plan(estimate=main_rank)
    if main_rank:
        drawer.first_line(plan, target)

    def _interrupt(signum: int, frame: Any) -> None:  # first Ctrl-C: checkpoint and stop; second: hard stop
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
    out.print(round_table(history, title=f"{target}: finished"))
    if log:
        viewer = f"   tensorboard --logdir {target / 'logs'}" if "tensorboard" in log else ""
        out.print(f"logs: {target / 'logs'}{viewer}", highlight=False)
    out.print(
        f"report figure: {target / 'report.png'}   export: lotteryir export {target} --round N -o ticket.safetensors"
    )
