"""``export`` and ``web``: what a ticket becomes after the search (a compact file, ONNX, a browser page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.options import options_help
from .app import app
from .commands import load_source
from .options import MODEL_HELP, AllowNonfinite, AllowUnchecked, Overlap, Overwrite, OwnModel, Round
from .render import out

# Typer re-wraps an epilog's lines; "\b" keeps the option list one line per option.
_RECIPES_EPILOG = "\b\n" + options_help() + "\n\nExample: --data-path denoise_test=/data/BSD68 --data-path noise=float"


@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir export runs/mirl-tiny-sample --round 10 -o ticket.safetensors --dtype fp16\n\n"
        "  lotteryir export ticket.safetensors --format onnx -o model.onnx"
    )
)
def export(
    run_dir: Annotated[Path, typer.Argument(help="Run directory or ticket (with --format onnx also a checkpoint).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (.safetensors ticket or .onnx).")],
    round: Round = None,
    dtype: Annotated[str, typer.Option(help="Surviving values as fp32 (exact) or fp16/bf16.")] = "fp32",
    overwrite: Overwrite = False,
    fmt: Annotated[
        str, typer.Option("--format", help="ticket (compact safetensors) or onnx (sparse initializers).")
    ] = "ticket",
    # Not OwnModel: a run's ticket is exported without building the network, so only ONNX needs it.
    model: Annotated[
        str | None, typer.Option(help="With --format onnx, the network when it is your own: " + MODEL_HELP)
    ] = None,
    allow_nonfinite: AllowNonfinite = False,
    allow_unchecked: AllowUnchecked = False,
) -> None:
    """Write a round's compact ticket (entropy-coded mask + surviving values), or the network as ONNX."""
    from ..runs import export_run

    if fmt == "onnx":
        return _export_onnx(run_dir, round, output, dtype, overwrite, model, allow_unchecked, allow_nonfinite)
    if fmt != "ticket":
        raise typer.BadParameter(f"--format must be ticket or onnx, got {fmt!r}")

    meta = export_run(
        run_dir,
        output,
        round=round,
        dtype=dtype,
        overwrite=overwrite,
        allow_nonfinite=allow_nonfinite,
        allow_unchecked=allow_unchecked,
    )
    size = output.stat().st_size
    out.print(
        f"wrote {output} ({size / 1e6:.2f} MB; {meta.get('model')}/{meta.get('size')}, "
        f"round {meta.get('round', '-')}, "
        f"density {meta['density']:.4f}, values {dtype})",
        highlight=False,
    )


def _export_onnx(
    source: Path,
    round: int | None,
    output: Path,
    dtype: str,
    overwrite: bool,
    model: str | None = None,
    allow_unchecked: bool = False,
    allow_nonfinite: bool = False,
) -> None:
    from ..data.options import CHANNELS
    from ..deploy import compare_onnx, to_onnx
    from ..models.channels import image_channels
    from ..runs import check_output

    if dtype != "fp32":
        raise typer.BadParameter("--dtype applies to tickets; ONNX files store float32")
    loaded, _ = load_source(source, round, allow_nonfinite, model=model, allow_unchecked=allow_unchecked)
    channels = image_channels(loaded.model, CHANNELS, f"{loaded.name}/{loaded.size}")
    check_output(output, overwrite)  # after the source: options are checked before outputs
    meta = {"lotteryir_model": f"{loaded.name}/{loaded.size}", "density": f"{loaded.mask.density:.6f}"}
    done = to_onnx(loaded.model, output, channels=channels, metadata=meta, overwrite=overwrite)
    out.print(
        f"wrote {output} ({done.bytes / 1e6:.2f} MB; stored densely {done.dense_bytes / 1e6:.2f} MB; "
        f"{done.sparse_tensors} sparse initializers; {loaded.name}/{loaded.size}, density "
        f"{loaded.mask.density:.4f}; opset {done.opset}, {channels}-channel images of any height and width >= "
        f"{done.metadata['multiple']})",
        highlight=False,
        soft_wrap=True,
    )
    diffs = compare_onnx(loaded.model, output, sizes=((64, 64), (40, 56)), channels=channels)
    worst = max(diffs.values())
    if worst > 1e-4:
        raise RuntimeError(f"{output}: onnxruntime differs from torch by {worst:.2e} (> 1e-4); please report this")
    out.print(
        f"checked with onnxruntime: max |difference| to torch {worst:.1e} on {', '.join(diffs)} images", highlight=False
    )


@app.command(
    epilog=(
        "Examples:\n\n"
        "  lotteryir web ticket.safetensors -o site/ --serve\n\n"
        "  lotteryir web runs/mirl-tiny-sample -o site/ --runtime node_modules/onnxruntime-web/dist   # offline"
    )
)
def web(
    source: Annotated[Path, typer.Argument(help="Ticket, checkpoint or run directory.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write the site into.")],
    round: Round = None,
    runtime: Annotated[
        Path | None, typer.Option(help="onnxruntime-web's dist folder, copied into the site (no CDN).")
    ] = None,
    runtime_url: Annotated[
        str | None, typer.Option("--runtime-url", help="Where the page loads onnxruntime-web from.")
    ] = None,
    tile: Annotated[int, typer.Option(help="Images larger than this are restored in tiles of this size.")] = 256,
    overlap: Overlap = 32,
    serve: Annotated[bool, typer.Option("--serve", help="Then serve the site on 127.0.0.1 until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
    overwrite: Overwrite = False,
    model: OwnModel = None,
    allow_unchecked: AllowUnchecked = False,
) -> None:
    """A static web page that restores images in the visitor's browser (onnxruntime-web, WebAssembly)."""
    from ..data.options import CHANNELS
    from ..deploy import DEFAULT_RUNTIME, build_site, serve_site
    from ..models.channels import image_channels
    from ..runs import check_output_dir

    loaded, _ = load_source(source, round, model=model, allow_unchecked=allow_unchecked)
    image_channels(loaded.model, CHANNELS, f"{loaded.name}/{loaded.size}")  # 1 (gray) or 3 (RGB), else refused
    check_output_dir(output, overwrite)  # after the source: options are checked before outputs
    site = build_site(
        loaded.model,
        output,
        name=f"{loaded.name}/{loaded.size}",
        density=loaded.mask.density,
        runtime_dir=runtime,
        runtime_url=runtime_url or DEFAULT_RUNTIME,
        tile=tile,
        overlap=overlap,
        overwrite=overwrite,
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


@app.command()
def models() -> None:
    """Available networks and sizes with parameter counts."""
    from ..models import available
    from .render import models_table

    out.print(models_table(available()))


@app.command(epilog=_RECIPES_EPILOG)
def recipes() -> None:
    """Available data recipes: tasks, expected folder layouts, and every option --data-path KEY=VALUE takes."""
    from ..data import available_recipes

    for info in available_recipes():
        out.print(f"[bold]{info.name}[/]: {info.description}")
        out.print(f"  tasks: {', '.join(info.tasks)}", highlight=False)
        for line in info.layout.splitlines():
            out.print(f"  {line}", highlight=False, markup=False)
        out.print()
