"""Options that several commands share, declared once (typer ``Annotated`` aliases), and their parsing.

A command writes ``device: Device = None``; the alias carries the flag's name and help, the command its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..data.errors import DataError
from ..data.options import DEFAULT_NOISE, NOISE_PROTOCOLS, check_noise

MODEL_HELP = (
    "Network: a name from `lotteryir models`, or your own as package.module:factory or "
    "path/to/file.py:factory (called with no arguments)."
)

Model = Annotated[str, typer.Option("--model", help=MODEL_HELP)]
OwnModel = Annotated[str | None, typer.Option("--model", help="The network, when it is your own: " + MODEL_HELP)]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when present).")]
Threads = Annotated[
    str, typer.Option("--threads", help="CPU threads: auto (the cores idle when the command starts) or N.")
]
RunThreads = Annotated[
    str,
    typer.Option(
        "--threads",
        help="CPU threads: machine (half the cores, fixed by the machine: the same command gives the same ticket "
        "whatever else runs), auto (the cores idle at the start: faster beside other work, but the ticket then "
        "depends on the load) or N. A resumed run keeps its own unless given.",
    ),
]
RecipeName = Annotated[str | None, typer.Option("--recipe", help="Data recipe: see `lotteryir recipes`.")]
DataRoot = Annotated[Path | None, typer.Option("--data", help="Data root of the recipe (not needed for sample).")]
DataPaths = Annotated[
    list[str],
    typer.Option(
        "--data-path",
        help="A recipe option, KEY=VALUE (e.g. derain_train=/x; every key: `lotteryir recipes --help`). Repeatable: "
        "a folder key given twice names two folders (denoise_test=/data/BSD68 --data-path denoise_test=/data/Set12 "
        "scores both sets); KEY= (empty) leaves that folder out.",
    ),
]
Noise = Annotated[
    str | None,
    typer.Option(
        "--noise",
        help="How Gaussian noise is synthesized for the denoising tasks (the recipe option noise=): "
        + "; ".join(f"{name}: {text}" for name, text in NOISE_PROTOCOLS.items())
        + f". Default {DEFAULT_NOISE}, or what the run recorded.",
    ),
]
Tasks = Annotated[str | None, typer.Option("--tasks", help="Comma-separated tasks (default: all of the recipe's).")]
Round = Annotated[int | None, typer.Option("--round", help="Round of a run directory (default: the last finished).")]
Overlap = Annotated[int, typer.Option("--overlap", help="Tile overlap in pixels.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (NaN as null).")]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace outputs that exist already, or write into an output folder that is not empty "
        "(never anything inside a run).",
    ),
]
AllowNonfinite = Annotated[
    bool, typer.Option("--allow-nonfinite", help="Use weights that hold NaN or infinity (refused by default).")
]
AllowUnchecked = Annotated[
    bool,
    typer.Option(
        "--allow-unchecked",
        help="Load a version 1 ticket (lotteryir 0.1, no checksums; refused by default). "
        "`lotteryir export TICKET -o new.safetensors --allow-unchecked` rewrites it as a checked one.",
    ),
]


def parse_threads(value: str) -> int | str | None:
    """--threads: 'machine' -> None (fixed by the machine), 'auto' (by the load at the start) or a positive integer."""
    word = value.strip().lower()
    if word == "machine":
        return None
    if word == "auto":
        return "auto"
    if not word.isdigit() or int(word) < 1:
        raise typer.BadParameter(f"--threads takes machine, auto or a positive integer, got {value!r}")
    return int(word)


def use_threads(value: str) -> None:
    """Apply --threads for the commands that run a network outside a run (evaluate, restore)."""
    from ..engine.threads import apply_threads, machine_threads, resolve_threads

    count = parse_threads(value)
    apply_threads(machine_threads() if count is None else resolve_threads(count))


def parse_paths(items: list[str], noise: str | None = None) -> dict[str, Any]:
    """--data-path KEY=VALUE items as a dict (digits become integers, e.g. max_images=2 for the sample recipe).

    A key given twice holds a list of its values (several folders: the recipe checks that the key takes them);
    KEY= holds "" (a folder left out). ``noise`` is --noise, the same as --data-path noise=...
    """
    paths: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--data-path takes KEY=VALUE, got {item!r}")
        typed = int(value) if value.isdigit() else value
        if key not in paths:
            paths[key] = typed
        elif isinstance(paths[key], list):
            paths[key].append(typed)
        else:
            paths[key] = [paths[key], typed]
    if noise is not None:
        try:
            protocol = check_noise(noise)
        except DataError as e:
            raise typer.BadParameter(f"--noise: {e}") from None
        if "noise" in paths and str(paths["noise"]).strip().lower() != protocol:
            raise typer.BadParameter(f"--noise {noise} and --data-path noise={paths['noise']} disagree; give one")
        paths["noise"] = protocol
    return paths


def parse_tasks(value: str | None) -> list[str] | None:
    """--tasks 'a, b' -> ['a', 'b']; None or empty -> None (all of the recipe's)."""
    if not value:
        return None
    return [t.strip() for t in value.split(",") if t.strip()] or None


def parse_method_options(items: list[str]) -> dict[str, str]:
    """--method-option KEY=VALUE items as a dict (the run's configuration types and checks the values)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"--method-option takes KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out
