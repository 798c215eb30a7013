"""``--log csv|tensorboard``: the curves under RUN/logs agree with history.jsonl, and a run resumed after
a SIGKILL never logs a step twice."""

from __future__ import annotations

import builtins
import json
import math
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lotteryir.runs import PruningRun, RunConfig, RunError, read_history, with_cost
from lotteryir.runs.logs import parse_log, read_csv

from ..reliability.errors import one_error_line
from ..tiny_run import TINY_ARGS
from .logged_run import CONFIG, run

event_file_loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")

REPO = Path(__file__).resolve().parents[2]


def _events(run: Path) -> list[tuple[str, int, float]]:
    """Every scalar in the run's event files, as (tag, step, value), read raw (no purging)."""
    out = []
    for path in sorted((run / "logs" / "tensorboard").glob("events.out.tfevents.*")):
        for event in event_file_loader.EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                number = value.simple_value if value.HasField("simple_value") else float(value.tensor.float_val[0])
                out.append((value.tag, event.step, number))
    return out


def _killed(out: Path, kill_at: tuple[int, str, int]) -> None:
    """The run in a fresh process that SIGKILLs itself right after logging step ``kill_at``."""
    command = [sys.executable, "-m", "tests.runs.logged_run", str(out), *map(str, kill_at)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, f"not killed ({done.returncode}): {done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("logs") / "straight"
    run(out)
    return out


def test_csv_and_event_files_agree_with_the_history(straight):
    history = with_cost(read_history(straight))
    steps = read_csv(straight / "logs" / "steps.csv")
    # Every training's every step, once: the ticket in rounds 0-2, the control in rounds 1-2.
    keys = Counter((int(r["round"]), r["kind"], int(r["step"])) for r in steps)
    expected = {(r, "ticket", s) for r in range(3) for s in range(1, 5)}
    expected |= {(r, "random_reinit", s) for r in (1, 2) for s in range(1, 5)}
    assert set(keys) == expected and set(keys.values()) == {1}
    # The ticket's global step runs through the rounds; a control's starts where its round's ticket did.
    for row in steps:
        assert int(row["global_step"]) == 4 * int(row["round"]) + int(row["step"])
    assert math.isclose(
        sum(float(r["loss"]) for r in steps if r["round"] == "0"), history[0]["train"]["loss"] * 4, rel_tol=1e-9
    )

    rounds = read_csv(straight / "logs" / "rounds.csv")
    assert [int(r["round"]) for r in rounds] == [0, 1, 2]
    for row, entry in zip(rounds, history):
        assert float(row["mean_psnr"]) == entry["mean_psnr"]
        assert float(row["mean_input_psnr"]) == entry["mean_input_psnr"]
        assert int(row["total_steps"]) == entry["cost_total"]["steps"]
        for label, scores in entry["eval"].items():
            assert float(row[f"{label}_psnr"]) == scores["psnr"]
            assert float(row[f"{label}_input_psnr"]) == scores["input_psnr"]
    assert [int(r["total_steps"]) for r in rounds] == [4, 12, 20]  # ticket 4 + control 4 per pruned round

    layers = read_csv(straight / "logs" / "layers.csv")
    for entry in history:
        own = [r for r in layers if int(r["round"]) == entry["round"]]
        assert sum(int(r["remaining"]) for r in own) == entry["remaining"]
        assert sum(int(r["total"]) for r in own) == entry["total"]

    events = _events(straight)
    by_tag: dict[str, dict[int, float]] = {}
    for tag, step, value in events:
        assert step not in by_tag.setdefault(tag, {}), f"{tag} has step {step} twice"
        by_tag[tag][step] = value
    for row in steps:
        prefix = "train" if row["kind"] == "ticket" else f"train_{row['kind']}"
        assert by_tag[f"{prefix}/loss"][int(row["global_step"])] == pytest.approx(float(row["loss"]), rel=1e-6)
        assert by_tag[f"{prefix}/lr"][int(row["global_step"])] == pytest.approx(float(row["lr"]), rel=1e-6)
    for entry in history:
        end = 4 * (entry["round"] + 1)  # where the round's ticket training ended
        assert by_tag["eval/mean_psnr"][end] == pytest.approx(entry["mean_psnr"], rel=1e-6)
        assert by_tag["eval/mean_input_psnr"][end] == pytest.approx(entry["mean_input_psnr"], rel=1e-6)
        assert by_tag["density/overall"][end] == pytest.approx(entry["density"], rel=1e-6)
        assert by_tag["cost/total_steps"][end] == entry["cost_total"]["steps"]
        if entry["round"] >= 1:
            control = entry["controls"]["random_reinit"]["mean_psnr"]
            assert by_tag["controls/random_reinit/mean_psnr"][end] == pytest.approx(control, rel=1e-6)


@pytest.mark.parametrize("kill_at", [(1, "ticket", 3), (2, "random_reinit", 3)], ids=["ticket", "control"])
def test_a_resumed_run_logs_each_step_once_and_as_an_uninterrupted_one(tmp_path, straight, kill_at):
    out = tmp_path / "resumed"
    _killed(out, kill_at)  # step 3 is logged, the checkpoint holds step 2: step 3 trains again
    rows = read_csv(out / "logs" / "steps.csv")
    assert (kill_at[0], kill_at[1], 3) in {(int(r["round"]), r["kind"], int(r["step"])) for r in rows}
    assert json.loads((out / "logs" / "tensorboard" / "complete.json").read_text()) == list(range(kill_at[0]))
    run(out)
    assert read_csv(out / "logs" / "steps.csv") == read_csv(straight / "logs" / "steps.csv")
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(read_csv(out / "logs" / "rounds.csv")) == strip(read_csv(straight / "logs" / "rounds.csv"))
    resumed = Counter((tag, step) for tag, step, _ in _events(out))
    assert max(resumed.values()) == 1, [k for k, n in resumed.items() if n > 1][:5]
    assert set(resumed) == {(tag, step) for tag, step, _ in _events(straight)}
    complete = json.loads((out / "logs" / "tensorboard" / "complete.json").read_text())
    assert complete == [0, 1, 2]


def test_a_run_that_starts_logging_late_gets_its_earlier_rounds_in_the_round_files(tmp_path):
    out = tmp_path / "late"
    with PruningRun(out, RunConfig(**dict(CONFIG, rounds=1, controls=[]))) as pruning:
        pruning.run()
    assert not (out / "logs").exists()
    with PruningRun(out, RunConfig(**dict(CONFIG, rounds=2, controls=[])), log="csv") as pruning:
        pruning.run()
    assert [int(r["round"]) for r in read_csv(out / "logs" / "rounds.csv")] == [0, 1, 2]
    assert {int(r["round"]) for r in read_csv(out / "logs" / "layers.csv")} == {0, 1, 2}
    assert {int(r["round"]) for r in read_csv(out / "logs" / "steps.csv")} == {2}  # steps only from now on


def test_log_kinds_are_checked_and_tensorboard_without_the_package_says_how_to_install(tmp_path, monkeypatch, capsys):
    assert parse_log("csv") == ("csv",)
    assert parse_log("tensorboard") == ("csv", "tensorboard")  # the CSV is the record
    with pytest.raises(ValueError, match="unknown logger wandb"):
        parse_log("csv,wandb")
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("tensorboard") or name == "torch.utils.tensorboard":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(RunError, match=r"pip install 'lotteryir\[tensorboard\]'"):
        parse_log("tensorboard")
    target = tmp_path / "never"
    argv = ["prune", *TINY_ARGS, "--out", str(target), "--log"]
    one_error_line(capsys, [*argv, "tensorboard"], "lotteryir[tensorboard]")
    assert not target.exists()  # refused before the run directory is made
    one_error_line(capsys, [*argv, "csv,wandb"], "unknown logger wandb")
    assert not target.exists()


def test_report_shows_what_every_training_cost(straight, capsys):
    from lotteryir.cli import main

    assert main(["report", str(straight), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    history = read_history(straight)
    for entry, reported in zip(history, payload["rounds"]):
        trainings = [entry["train"], *(c["train"] for c in entry["controls"].values())]
        assert reported["cost"]["steps"] == sum(t["steps"] for t in trainings)
        assert reported["cost"]["train_seconds"] == pytest.approx(sum(t["seconds"] for t in trainings))
        assert reported["cost"]["trainings"] == len(trainings)
    assert payload["cost"]["steps"] == 20 and payload["cost"]["trainings"] == 5
    assert payload["cost"]["steps"] == payload["rounds"][-1]["cost_total"]["steps"]
    assert main(["report", str(straight)]) == 0
    table = capsys.readouterr().out
    assert "steps" in table
    last_row = next(line for line in table.splitlines() if line.strip("│ ").startswith("2 "))
    assert "20" in last_row.split("│")[-3]  # the steps column: every training of rounds 0-2


def test_cost_of_a_history_older_than_the_cost_field_is_computed_from_its_trainings():
    from lotteryir.runs import round_cost, run_cost

    old = [
        {"round": 0, "train": {"steps": 10, "seconds": 2.0}, "controls": {}},
        {"round": 1, "train": {"steps": 10, "seconds": 3.0}, "controls": {"random_prune": {"train": {"steps": 7}}}},
        {"round": 2, "train": {"steps": 0, "seconds": float("nan")}, "controls": {}},  # resumed with nothing left
    ]
    assert round_cost(old[1]) == {"trainings": 2, "steps": 17, "train_seconds": 3.0}
    assert round_cost(old[2]) == {"trainings": 0, "steps": 0, "train_seconds": 0.0}
    assert [e["cost_total"]["steps"] for e in with_cost(old)] == [10, 27, 27]
    assert run_cost(old) == {"trainings": 3, "steps": 27, "train_seconds": 5.0}
