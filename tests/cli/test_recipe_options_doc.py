"""Every recipe option is documented where a user looks: `lotteryir recipes --help` and docs/data.md."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from lotteryir.cli import app
from lotteryir.data.options import FOLDER_OPTIONS, NOISE_PROTOCOLS, SAMPLE_OPTIONS
from lotteryir.data.recipes import _FOLDER_CHOICES, _FOLDER_FLAGS, _SAMPLE_OPTIONS
from lotteryir.data.sample import SampleRecipe

DATA_PAGE = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def test_every_option_the_recipes_accept_is_listed_in_the_help_and_on_the_data_page():
    import inspect

    # What the recipes accept is what options.py lists (so the lists below cannot fall behind the code).
    assert set(_SAMPLE_OPTIONS) == set(SAMPLE_OPTIONS)
    assert set(inspect.signature(SampleRecipe).parameters) - {"channels"} == set(SAMPLE_OPTIONS)
    folder_keys = {f"{f}_{k}" for f in ("denoise", "derain", "dehaze", "web") for k in ("train", "test")}
    assert set(FOLDER_OPTIONS) == folder_keys | set(_FOLDER_CHOICES) | set(_FOLDER_FLAGS) | {"noise", "web"}
    shown = CliRunner().invoke(app, ["recipes", "--help"], env={"COLUMNS": "200"}).output
    page = DATA_PAGE.read_text()
    for key in [*SAMPLE_OPTIONS, *FOLDER_OPTIONS]:
        assert f"  {key}: " in shown, key
        assert f"`{key}`" in page, key
    for name in NOISE_PROTOCOLS:
        assert f"  {name}: " in shown and f"`{name}`" in page, name
