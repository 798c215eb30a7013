"""`evaluate` shows its progress when its output is not a terminal: a line per finished set on stderr."""

from __future__ import annotations

import json
import re

from lotteryir.cli import main


def test_a_line_per_set_with_elapsed_time_and_what_is_left(finished_run, capsys):
    assert main(["evaluate", str(finished_run), "--round", "0", "--json"]) == 0
    captured = capsys.readouterr()
    sets = json.loads(captured.out)["sets"]
    lines = [line for line in captured.err.splitlines() if "images done" in line]
    assert len(lines) == len(sets) == 2
    first, last = lines
    label = next(iter(sets))
    assert re.match(rf"{re.escape(label)}: 2 images done; 1 of 2 sets, elapsed \d+ s, about \d+ s left$", first)
    assert re.search(r"2 of 2 sets, elapsed \d+ s$", last)  # nothing left: no estimate
