"""3c. A finished round's lost file: rebuilt from what else holds it, or named with what to do, before
``prune`` says "finished" or trains on; readers name the same remedies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lotteryir.cli import main
from lotteryir.pruning import Mask
from lotteryir.pruning.ticket import load_compact
from lotteryir.runs import PruningRun, RunCallbacks, RunConfig, read_history

from ..tiny_run import TINY, TINY_ARGS
from .errors import listing, one_error_line


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def _unchanged(run: Path) -> dict:
    return {k: v for k, v in listing(run).items() if k != "lock"}


def _rounds(n: int) -> list[str]:
    """TINY_ARGS asking for ``n`` rounds (more than the run has: it would train on)."""
    i = TINY_ARGS.index("--rounds")
    return [*TINY_ARGS[: i + 1], str(n), *TINY_ARGS[i + 2 :]]


def test_what_other_files_hold_is_rebuilt_without_training(finished_run, run_copy, capsys):
    """Round 0's mask (the audit's case), the last round's ticket and mask, a record, a figure, the history."""
    lost = ["r00/mask.safetensors", "r02/ticket.safetensors", "r02/mask.safetensors", "r01/metrics.json"]
    lost += ["r01/samples.png"]
    for name in lost:
        (run_copy / "rounds" / name).unlink()
    (run_copy / "history.jsonl").unlink()
    trained: list[tuple] = []
    run = PruningRun(run_copy, RunConfig(**TINY), RunCallbacks(on_train_start=lambda *a: trained.append(a)))
    planned = run.plan(estimate=False).rebuild
    assert sorted(p.split(" ")[0] for p in planned) == sorted(f"rounds/{n}" for n in lost), planned
    assert "rounds/r00/mask.safetensors (from its ticket)" in planned
    assert "rounds/r02/ticket.safetensors (from pruner/, the weights it was written from)" in planned
    history = run.run()
    assert not trained
    assert history == read_history(finished_run)
    for r in range(3):
        mine, ref = run_copy / "rounds" / f"r{r:02d}", finished_run / "rounds" / f"r{r:02d}"
        assert Mask.load(mine / "mask.safetensors") == Mask.load(ref / "mask.safetensors"), r
        (state, mask, header), (ref_state, ref_mask, ref_header) = (
            load_compact(d / "ticket.safetensors") for d in (mine, ref)
        )
        source = ref_header.pop("source_run")  # a rebuilt ticket names where the run is now (a copy here)
        assert header.pop("source_run") == (str(run_copy.resolve()) if r == 2 else source), r
        assert header == ref_header and mask == ref_mask, r
        assert state.keys() == ref_state.keys() and all(torch.equal(state[k], ref_state[k]) for k in state), r
        assert json.loads((mine / "metrics.json").read_text()) == json.loads((ref / "metrics.json").read_text())
        assert (mine / "samples.png").stat().st_size > 1000
    # Bit for bit: the round writers' own bytes come back.
    for name in ("r02/mask.safetensors", "r00/mask.safetensors", "r01/metrics.json"):
        assert (run_copy / "rounds" / name).read_bytes() == (finished_run / "rounds" / name).read_bytes(), name


def test_the_cli_says_what_it_rebuilt(run_copy, capsys):
    (run_copy / "rounds" / "r00" / "mask.safetensors").unlink()
    assert main(["prune", *TINY_ARGS, "--out", str(run_copy)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "rebuilding missing files: rounds/r00/mask.safetensors (from its ticket)" in said, said
    assert (run_copy / "rounds" / "r00" / "mask.safetensors").is_file()


@pytest.mark.parametrize(
    "lost",
    [["r01/ticket.safetensors"], ["r00/ticket.safetensors", "r00/mask.safetensors"]],
    ids=["round-1-ticket", "round-0-ticket-and-mask"],
)
def test_an_earlier_rounds_lost_ticket_is_named_and_nothing_runs(run_copy, capsys, lost):
    """The audit's case: prune said "finished" (or trained on) without noticing."""
    for name in lost:
        (run_copy / "rounds" / name).unlink()
    before = _unchanged(run_copy)
    for argv in (TINY_ARGS, _rounds(3)):
        line = one_error_line(capsys, ["prune", *argv, "--out", str(run_copy)], "cannot be rebuilt")
        assert all(str(run_copy / "rounds" / name) in line for name in lost), line
        assert "kept nowhere else" in line and "backup" in line and "new --out" in line, line
    assert _unchanged(run_copy) == before


@pytest.mark.parametrize("name", ["model.safetensors", "rewind.safetensors"])
def test_a_lost_pruner_file_is_named_before_anything_is_loaded(run_copy, capsys, name):
    # Without model.safetensors the pruner went on from freshly built weights.
    (run_copy / "pruner" / name).unlink()
    before = _unchanged(run_copy)
    line = one_error_line(capsys, ["prune", *TINY_ARGS, "--out", str(run_copy)], f"{run_copy / 'pruner' / name}")
    assert "is missing" in line and "backup" in line and "new --out" in line, line
    assert _unchanged(run_copy) == before


def test_a_lost_pruner_folder_is_refused_instead_of_starting_over(run_copy, capsys):
    """Round 0 would have trained again and replaced every finished round's files."""
    shutil.rmtree(run_copy / "pruner")
    before = _unchanged(run_copy)
    line = one_error_line(capsys, ["prune", *TINY_ARGS, "--out", str(run_copy)], "finished round 2")
    assert "pruner state" in line and "is missing" in line and "backup" in line and "new --out" in line, line
    assert _unchanged(run_copy) == before


def test_a_lost_config_is_named_as_such(run_copy, capsys):
    (run_copy / "config.json").unlink()
    for argv in (["prune", *TINY_ARGS, "--out", str(run_copy)], ["report", str(run_copy)]):
        line = one_error_line(capsys, argv, f"{run_copy / 'config.json'} is missing")
        assert "backup" in line, line


@pytest.mark.parametrize(
    "lost, argv, expect",
    [
        ("r01/ticket.safetensors", ["export", "{run}", "--round", "1"], "cannot be rebuilt"),
        ("r02/ticket.safetensors", ["export", "{run}"], "rerun the prune command with the same --out"),
        ("r02/ticket.safetensors", ["evaluate", "{run}"], "rebuild it from pruner/"),
        ("r01/mask.safetensors", ["compare", "{run}", "{run}", "--round", "1"], "rebuild it from its ticket"),
        ("r01/metrics.json", ["prune", *TINY_ARGS, "--out", "{run}"], None),  # the writer rebuilds it
    ],
)
def test_readers_name_the_remedy_for_a_lost_round_file(run_copy, tmp_path, capsys, lost, argv, expect):
    (run_copy / "rounds" / lost).unlink()
    argv = [a.replace("{run}", str(run_copy)) for a in argv]
    if argv[0] == "export":
        argv += ["-o", str(tmp_path / "out.safetensors")]
    if expect is None:
        assert main(argv) == 0 and (run_copy / "rounds" / lost).is_file()
        return
    line = one_error_line(capsys, argv, f"{run_copy / 'rounds' / lost} is missing", expect)
    assert ("backup" in line) == (expect == "cannot be rebuilt"), line


def test_a_lost_history_is_named_to_readers_and_rebuilt_by_the_writer(finished_run, run_copy, capsys):
    (run_copy / "history.jsonl").unlink()
    line = one_error_line(capsys, ["report", str(run_copy)], "history.jsonl is missing")
    assert "rerunning the prune command with the same --out rebuilds it" in line, line
    assert PruningRun(run_copy, RunConfig(**TINY)).run() == read_history(finished_run)


def test_a_missing_record_is_rebuilt_from_the_pruner_state(finished_run, run_copy):
    """Its metrics.json and its history line both gone (it used to need a new --out)."""
    (run_copy / "rounds" / "r01" / "metrics.json").unlink()
    (run_copy / "history.jsonl").write_text("")
    assert PruningRun(run_copy, RunConfig(**TINY)).run() == read_history(finished_run)
    metrics = "rounds/r01/metrics.json"
    assert (run_copy / metrics).read_bytes() == (finished_run / metrics).read_bytes()
