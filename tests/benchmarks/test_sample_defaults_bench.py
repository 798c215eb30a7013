"""benchmarks/sample_defaults.py's bookkeeping: which trainings a candidate shares, and merging sittings."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import sample_defaults as bench
import torch


def test_records_made_before_the_web_option_keep_their_keys_and_non_web_tasks_are_shared():
    data = json.loads(bench.OUT.read_text())
    today_all = bench.key(bench.TODAY, bench.TASKS, "validation", 0)
    assert today_all in data["trainings"] and data["trainings"][today_all]["candidate"] == "today"
    jpeg = next(c for c in bench.GRID if c.name == "jpeg")
    resized = replace(jpeg, web="resize-jpeg")
    for task in ("derain", "dehaze", "denoise_25"):  # they never see the web degradation
        assert bench.key(jpeg, (task,), "validation", 0) == bench.key(resized, (task,), "validation", 0)
    assert bench.key(jpeg, ("web",), "validation", 0) != bench.key(resized, ("web",), "validation", 0)
    assert bench.key(jpeg, bench.TASKS, "validation", 0) != bench.key(resized, bench.TASKS, "validation", 0)


def test_merge_adds_the_other_sittings_trainings_and_sums_the_wall_time():
    def sitting(started: str, wall: float) -> dict:
        return {"started": started, "command": "python benchmarks/sample_defaults.py", "wall_seconds": wall}

    mine = {"trainings": {"a": {"x": 1}}, "provenance": {"sittings": [sitting("2026-12-06T09:03:00", 10.0)]}}
    other = {
        "trainings": {"a": {"x": 2}, "b": {"x": 3}},
        "provenance": {"sittings": [sitting("2026-12-06T09:02:00", 5.5)]},
    }
    bench.merge(mine, other)
    assert mine["trainings"] == {"a": {"x": 1}, "b": {"x": 3}}  # a training already here is kept
    assert [s["started"] for s in mine["provenance"]["sittings"]] == ["2026-12-06T09:02:00", "2026-12-06T09:03:00"]
    assert mine["provenance"]["wall_seconds"] == 15.5
    bench.merge(mine, other)  # merging the same file again adds nothing
    assert len(mine["provenance"]["sittings"]) == 2 and mine["provenance"]["wall_seconds"] == 15.5


def test_the_shift_split_separates_a_uniform_shift_from_the_rest() -> None:
    g = torch.Generator().manual_seed(0)
    target = 0.2 + 0.6 * torch.rand(1, 3, 32, 32, generator=g)
    veil = torch.tensor([0.05, 0.0, -0.03]).view(1, 3, 1, 1)  # a shift of brightness and colour, per channel
    degraded = target + veil
    noise = 0.01 * torch.randn(1, 3, 32, 32, generator=g)
    restored = target + noise - noise.mean(dim=(-2, -1), keepdim=True)  # the shift undone, noise added
    got = bench.shift_split(restored, degraded, target)
    assert got["shift_255"] == pytest.approx(0.08 / 3 * 255, rel=1e-4)
    mse_in = (0.05**2 + 0.03**2) / 3
    assert got["gain"] == pytest.approx(10 * math.log10(mse_in / 1e-4), abs=0.2)
    assert got["shift_only"] > got["gain"] + 20  # the shift alone restores the target (to float error)
    # the output with the shift put back: the input's error plus the noise
    assert got["without_shift"] == pytest.approx(-10 * math.log10((mse_in + 1e-4) / mse_in), abs=0.05)
