"""`prune --help` states the defaults the configuration really uses, read from the same constants."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from lotteryir.cli import app
from lotteryir.runs import RunConfig
from lotteryir.runs.config import (
    DEFAULT_EPOCHS,
    DEFAULT_PATCH,
    DEFAULT_SIZE,
    PAPER_LR,
    SAMPLE_LR,
    SAMPLE_PATCH,
    SAMPLE_SIZE,
    SAMPLE_STEPS,
)


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    # rich draws a box and wraps: keep the words only
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output))


def test_prune_help_gives_the_defaults_the_code_uses():
    text = _help("prune")
    assert f"default {SAMPLE_STEPS} on sample data" in text
    assert f"default {PAPER_LR:g}; {SAMPLE_LR:g} on sample data" in text
    assert f"default {DEFAULT_PATCH}; {SAMPLE_PATCH} on sample data" in text
    assert f"default {DEFAULT_EPOCHS} on real data" in text
    assert f"default: {SAMPLE_SIZE} on the sample recipe, else {DEFAULT_SIZE}" in text


def test_the_constants_are_what_a_sample_run_resolves_to():
    """The help reads the constants; this ties the constants to what resolved() really picks."""
    sample = RunConfig(rounds=1).resolved()
    assert (sample.steps, sample.lr, sample.patch_size, sample.size) == (
        SAMPLE_STEPS,
        SAMPLE_LR,
        SAMPLE_PATCH,
        SAMPLE_SIZE,
    )


def test_prune_help_shows_the_field_defaults():
    text = _help("prune")
    defaults = RunConfig()
    for option, value in (("--rate", defaults.rate), ("--batch-size", defaults.batch_size)):
        assert re.search(re.escape(option) + r" .*?\[default: " + re.escape(str(value)) + r"\]", text), option


def test_shared_options_read_the_same_in_every_command():
    """--device and --threads are declared once: the same help wherever they appear."""
    for command in ("prune", "evaluate", "restore"):
        text = _help(command)
        assert "--device <str> cpu, cuda, cuda:1 ... (default: CUDA when present)." in text, command
        # A run's threads default to a count fixed by the machine (the same ticket whatever the load).
        threads = "--threads <str> CPU threads: machine" if command == "prune" else "--threads <str> CPU threads: auto"
        assert threads in text, command
