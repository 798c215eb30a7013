"""``evaluate``, ``restore`` and ``report``: what a run's rounds, a ticket or a checkpoint are worth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer

from .app import app
from .options import (
    AllowNonfinite,
    AllowUnchecked,
    AsJson,
    DataPaths,
    DataRoot,
    Device,
    Noise,
    Overlap,
    Overwrite,
    OwnModel,
    RecipeName,
    Round,
    Tasks,
    Threads,
    parse_paths,
    parse_tasks,
    use_threads,
)
from .render import EvaluateDrawer, err, evaluate_table, json_text, out, round_table, worse_than_input


def load_source(
    source: Path,
    round: int | None,
    allow_nonfinite: bool = False,
    model: str | None = None,
    allow_unchecked: bool = False,
) -> Any:
    """A run directory (its round's ticket), a compact ticket, or a published checkpoint: (loaded, run config)."""
    from ..checkpoints import load_checkpoint
    from ..models import refuse_from_file, register_import_path
    from ..models.external import canonical_name
    from ..runs import is_run_dir, read_config, round_ticket_path
    from ..runs.layout import not_a_run

    if model is not None:
        model = register_import_path(model)  # typed by the user, so it may be imported
    if is_run_dir(source):
        config = read_config(source)
        if model is None:
            refuse_from_file(config.model, str(source))
        elif model != canonical_name(config.model):
            raise ValueError(f"{source} is a run of model {config.model!r}, not {model!r}")
        ticket = round_ticket_path(source, round)
        loaded = load_checkpoint(
            ticket, config.model, config.size, allow_nonfinite=allow_nonfinite, allow_unchecked=allow_unchecked
        )
        return loaded, config
    if round is not None:
        raise typer.BadParameter("--round only applies to a run directory")
    if not source.exists():
        raise FileNotFoundError(f"no such checkpoint or run directory: {source}")
    if source.is_dir():
        raise not_a_run(source, f"{source} is a directory but not a lotteryir run (no config.json)")
    return load_checkpoint(source, model, allow_nonfinite=allow_nonfinite, allow_unchecked=allow_unchecked), None


# --------------------------------------------------------------------------- evaluate
@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir evaluate runs/mirl-tiny-sample --round 3\n\n"
        "  lotteryir evaluate ticket.safetensors --json\n\n"
        "  lotteryir evaluate mirl_pruned.ckpt --recipe mirl --data /data/mirl --save-images restored/\n\n"
        "  lotteryir evaluate dncnn.safetensors --model nets.py:dncnn --recipe denoise --tasks denoise_25 "
        "--noise float --data-path denoise_test=/data/BSD68 --data-path denoise_test=/data/Set12   # no training folder"
    )
)
def evaluate(
    source: Annotated[
        Path, typer.Argument(help="Run directory, exported ticket, or a MIR-L/PromptIR/Restormer checkpoint.")
    ],
    round: Round = None,
    recipe: RecipeName = None,
    data: DataRoot = None,
    data_path: DataPaths = [],  # noqa: B006 - typer copies it; never mutated
    tasks: Tasks = None,
    save_images: Annotated[Path | None, typer.Option("--save-images", help="Write restored images here.")] = None,
    tile: Annotated[int | None, typer.Option(help="Restore in tiles of this size (large images).")] = None,
    y_channel: Annotated[
        bool,
        typer.Option(
            "--y-channel", help="Score RGB images on their BT.601 Y channel (studio swing), as Restormer's deraining."
        ),
    ] = False,
    crop_border: Annotated[
        int,
        typer.Option(
            "--crop-border", help="Cut this many pixels from each side before PSNR/SSIM (KAIR's border; default 0)."
        ),
    ] = 0,
    noise: Noise = None,
    device: Device = None,
    as_json: AsJson = False,
    threads: Threads = "auto",
    allow_nonfinite: AllowNonfinite = False,
    allow_unchecked: AllowUnchecked = False,
    overwrite: Overwrite = False,
    model: OwnModel = None,
) -> None:
    """Per-task PSNR/SSIM of a run's round, a ticket, or a published checkpoint, beside the degraded input's.

    The test data is the run's own (recipe, data, tasks) unless --recipe names another; else the sample recipe.
    Only the test folders are read (no training folder is needed). Images have the network's input channels:
    a 1-channel network reads grayscale (a colour file becomes its BT.601 luma). Every result records its
    protocol (noise, channels, crop, Y channel).
    """
    from ..data.options import CHANNELS
    from ..engine import evaluate as run_eval
    from ..engine import pick_device
    from ..models.channels import image_channels
    from ..runs import check_output_dir, mean_scores
    from ..runs.config import open_recipe

    if crop_border < 0:
        raise typer.BadParameter(f"--crop-border must be 0 or more pixels, got {crop_border}")
    loaded, config = load_source(source, round, allow_nonfinite, model, allow_unchecked)
    channels = image_channels(loaded.model, CHANNELS, f"{loaded.name}/{loaded.size}")
    own = config is not None and not recipe  # the run's own test data unless another recipe is named
    name = recipe or (config.recipe if config else "sample")
    root = str(data) if data else (config.data if own else None)
    paths = parse_paths(data_path, noise) if data_path else (dict(config.data_paths) if own else {})
    if noise is not None and not data_path:  # --noise scores a run's own test sets under another protocol
        paths = parse_paths([], noise) | {k: v for k, v in paths.items() if k != "noise"}
    selected = parse_tasks(tasks) or (config.tasks if own and config.tasks else None)
    rec = open_recipe(name, root, paths, channels=channels, tasks=selected, train=False)
    if save_images is not None:  # after the source and the data: options are checked before outputs
        check_output_dir(save_images, overwrite, "--save-images")
    dev = pick_device(device)
    if dev.type == "cpu":
        use_threads(threads)
    sets = rec.test_sets(tasks=selected)
    if not sets:
        raise ValueError(
            f"recipe {name!r} has no test set for {', '.join(selected or rec.tasks)}: give one with "
            "--data-path <family>_test=FOLDER (see `lotteryir recipes --help`)"
        )
    with EvaluateDrawer({label: len(s) for label, s in sets.items()}) as drawer:  # type: ignore[arg-type]
        result = run_eval(
            loaded.model.to(dev),
            sets,
            tile=tile,
            y_channel=y_channel,
            crop_border=crop_border,
            save_dir=save_images,
            device=dev,
            progress=drawer.image,
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
        "worse_than_input": worse_than_input(summary),
        "protocol": result.protocol(),
    }
    if as_json:
        print(json_text(payload))
        return
    out.print(evaluate_table(payload, f"{source} ({loaded.name}/{loaded.size}, density {loaded.mask.density:.4f})"))
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
    source: Annotated[Path, typer.Argument(help="Checkpoint, exported ticket or run directory.")],
    images: Annotated[list[Path], typer.Argument(help="Images to restore.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output directory.")],
    round: Round = None,
    tile: Annotated[
        int | None, typer.Option(help="Tile size; default: tiles of 512 for images above 1024x1024.")
    ] = None,
    overlap: Overlap = 32,
    device: Device = None,
    threads: Threads = "auto",
    overwrite: Overwrite = False,
    allow_nonfinite: AllowNonfinite = False,
    allow_unchecked: AllowUnchecked = False,
    sparse: Annotated[
        bool, typer.Option("--sparse", help="CPU: run pruned 1x1 convolutions as sparse (CSR) products.")
    ] = False,
    model: OwnModel = None,
) -> None:
    """Restore your own images (any size; tiled when large) to <output>/<name>.png.

    A 1-channel network reads and writes grayscale (a colour file becomes its BT.601 luma), a 3-channel
    one RGB. Nothing is written over an input, an earlier output of the same call, or (without --overwrite)
    an existing file. A bad image is reported and skipped; the exit code is 1 if any failed.
    """
    from ..data import read_image, write_image
    from ..data.options import CHANNELS
    from ..engine import pick_device, restore_image
    from ..models.channels import image_channels
    from ..runs import restore_targets

    # The source and its options first (a missing --model is named before any output is looked at).
    loaded, _ = load_source(source, round, allow_nonfinite, model, allow_unchecked)
    channels = image_channels(loaded.model, CHANNELS, f"{loaded.name}/{loaded.size}")
    pairs = restore_targets(images, output, overwrite)
    dev = pick_device(device if device or not sparse else "cpu")
    if dev.type == "cpu":
        use_threads(threads)
    net = loaded.model.to(dev).eval()
    if sparse:
        net = _sparse_model(net, dev)
    failed = 0
    for path, target in pairs:
        try:
            img = read_image(path, channels)
            use_tile = tile if tile is not None else (512 if img.shape[1] * img.shape[2] > 1024 * 1024 else None)
            restored = restore_image(net, img, tile=use_tile, overlap=overlap, device=dev).clamp(0, 1)
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


def _sparse_model(model: Any, dev: Any) -> Any:
    from ..deploy import sparsify
    from ..deploy.sparse import MAX_DENSITY, SparsifyReport

    if dev.type != "cpu":
        raise typer.BadParameter(f"--sparse runs on the CPU, not {dev}; pass --device cpu")
    sparse = sparsify(model)
    report = cast(SparsifyReport, sparse.sparsify_report)  # set by sparsify on the copy it returns
    done, kept = report.replaced, report.dense
    dense = f"; {len(kept)} denser than {MAX_DENSITY:g} stay dense" if kept else ""
    fused = len(report.fused)
    out.print(
        f"sparse: {len(done)} of {len(done) + len(kept)} 1x1 convolutions/linears run as CSR products{dense}; "
        f"{fused} 1x1+depthwise pairs computed in row bands",
        highlight=False,
    )
    return sparse


# --------------------------------------------------------------------------- report
@app.command(epilog="Example:\n\n  lotteryir report runs/mirl-tiny-sample --json")
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory.")],
    as_json: AsJson = False,
    figure: Annotated[
        Path | None, typer.Option("--figure", help="Also draw the figure to this PNG file (outside the run).")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """The round table (density, parameters left, per-task PSNR/SSIM, controls, steps spent, time) and the figure.

    Reads the run without writing into it, so it works while `prune` runs and on a read-only copy;
    `prune` keeps the run's own report.png up to date.
    """
    from ..runs import RunLayout, check_output, read_config, read_history, run_cost, with_cost
    from ..runs.figures import write_report_figure

    config = read_config(run_dir)
    history = read_history(run_dir)
    if figure is not None:
        check_output(figure, overwrite, "--figure")
        if history:
            write_report_figure(history, figure, title=f"{config.model}/{config.size}", overwrite=overwrite)
    if as_json:
        payload = {"run": str(run_dir), "config": config.to_dict(), "rounds": with_cost(history)}
        print(json_text({**payload, "cost": run_cost(history)}))
        return
    if not history:
        out.print(f"{run_dir}: no finished round yet")
        return
    out.print(round_table(history, title=f"{run_dir} ({config.model}/{config.size}, {config.recipe})"))
    own = RunLayout(run_dir).report
    if figure is not None:
        out.print(f"figure: {figure}", highlight=False)
    elif own.is_file():
        out.print(f"figure: {own}", highlight=False)
    else:
        out.print(f"{run_dir} has no report.png yet; --figure PATH draws one elsewhere", highlight=False)
