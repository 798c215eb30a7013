"""`lotteryir stability`, `lotteryir compare` and `prune --rewind step:auto` on tiny finished runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lotteryir.analysis import PathResult, StabilityReport, compare, smallest_stable, states_at_steps
from lotteryir.analysis.run_stability import save_report
from lotteryir.cli import main
from lotteryir.models import register_import_path
from lotteryir.pruning import Mask
from lotteryir.pruning.rewind import named_tensors
from lotteryir.runs import RunLayout, build_run, read_config, read_history

from ..reliability.errors import one_error_line
from ..runs.test_user_model import NET, _net
from ..tiny_run import OWN_MODEL_ARGS


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> tuple[Path, str, Path]:
    """(folder, --model value, run): a user's 2-layer network pruned one round, rewinding to step 1."""
    folder = tmp_path_factory.mktemp("own")
    nets = _net(folder, NET.format(channels=3))
    model = f"{nets}:Net"
    run = folder / "run"
    argv = ["prune", "--model", model, "--rounds", "1", "--rewind", "step:1", *OWN_MODEL_ARGS, "--out", str(run)]
    assert main(argv) == 0
    return folder, model, run


@pytest.fixture(scope="module")
def other(own) -> Path:
    """The same network and data as ``own``, another seed and rewinding to init: another mask, another start."""
    folder, model, _ = own
    run = folder / "other"
    assert main(["prune", "--model", model, "--rounds", "1", "--seed", "4", *OWN_MODEL_ARGS, "--out", str(run)]) == 0
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


def test_stability_stores_the_barriers_and_the_figure_for_a_users_network(own, tmp_path, capsys):
    _, model, source = own
    run = _copy(source, tmp_path)
    argv = ["stability", str(run), "--model", model, "--round", "1", "--rewind-steps", "0,1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    layout = RunLayout(run)
    data = json.loads(layout.stability.read_text())
    assert data["round"] == 1 and data["density"] < 1 and [e["k"] for e in data["rewind_steps"]] == [0, 1]
    for entry in data["rewind_steps"]:
        assert len(entry["alphas"]) == 11 and all(len(c) == 11 for c in entry["psnr"].values())
        assert entry["steps"] == 2 - entry["k"]  # a round of the run minus k
        first, second = entry["train"]
        assert first["steps"] == second["steps"] and first["loss"] != second["loss"]  # same length, other data
    barriers = {e["k"]: e["mean_barrier"] for e in data["rewind_steps"]}
    assert data["stable_step"] == smallest_stable(barriers, 0.1)
    assert data["input_psnr"] and ("smallest stable rewind step" in printed or "no rewind step" in printed)
    assert layout.stability_figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in layout.analysis.iterdir()) == ["stability.json", "stability.png"]


def test_the_replayed_step_k_is_the_weights_the_run_rewound_to(own):
    _, model, run = own
    register_import_path(model)
    built = build_run(read_config(run))
    states = states_at_steps(built, [0, 1])
    kept = load_file(str(RunLayout(run).pruner / "rewind.safetensors"))  # the run's own step-1 weights
    assert kept.keys() == states[1].keys()
    assert all(torch.equal(kept[k], states[1][k]) for k in kept)
    assert any(not torch.equal(states[0][k], states[1][k]) for k in kept)  # step 1 is not the init


def test_stability_refuses_what_it_cannot_measure(own, tmp_path, capsys):
    _, model, source = own
    run = _copy(source, tmp_path)
    one_error_line(capsys, ["stability", str(run), "--model", model, "--rewind-steps", "2"], "not before the end")
    one_error_line(capsys, ["stability", str(run), "--model", model, "--round", "7"], "round 7", "not finished")
    assert main(["stability", str(run), "--model", model, "--rewind-steps", "a,b"]) == 2  # a usage error
    assert not RunLayout(run).analysis.exists()


def _store(run: Path, barriers: dict[int, float]) -> None:
    """A stored analysis whose mean barriers are ``barriers`` (a dip of that depth between equal endpoints)."""
    grid = [i / 10 for i in range(11)]
    paths = {
        k: PathResult(grid, {"set": [20.0 - (b if i == 5 else 0.0) for i in range(11)]}, (1, 2))
        for k, b in barriers.items()
    }
    save_report(RunLayout(run), StabilityReport(1, 0.8, 0.1, paths, dict.fromkeys(barriers, 1), {"set": 18.0}))


def test_rewind_step_auto_continues_the_run_at_its_smallest_stable_step(own, tmp_path):
    _, model, source = own
    run = _copy(source, tmp_path)
    _store(run, {0: 0.5, 1: 0.02})  # step 1 is the smallest stable one: the run's own rewind
    argv = ["prune", "--model", model, "--rounds", "2", "--rewind", "step:auto", *OWN_MODEL_ARGS, "--out", str(run)]
    assert main(argv) == 0
    assert [h["round"] for h in read_history(run)] == [0, 1, 2]
    assert read_config(run).rewind == "step:1"


def test_rewind_step_auto_says_why_it_cannot_resolve(own, tmp_path, capsys):
    folder, model, source = own
    run = _copy(source, tmp_path)
    auto = ["prune", "--model", model, "--rounds", "2", "--rewind", "step:auto", *OWN_MODEL_ARGS, "--out"]
    one_error_line(capsys, [*auto, str(run)], "holds no stability analysis", "lotteryir stability")
    one_error_line(capsys, [*auto, str(tmp_path / "new")], "not a run yet")
    assert not (tmp_path / "new").exists()  # refused before the run's directory is made
    _store(run, {0: 0.5, 1: 0.3})
    one_error_line(capsys, [*auto, str(run)], "no rewind step", "is stable", "k=0: 0.50 dB")
    _store(run, {0: 0.0, 1: 0.0})  # init is stable, but the run rewinds to step 1
    one_error_line(capsys, [*auto, str(run)], "--rewind init", "a run keeps its rewind")
    RunLayout(run).stability.write_text("{not json")
    one_error_line(capsys, [*auto, str(run)], "is damaged")
    assert [h["round"] for h in read_history(run)] == [0, 1]


def test_compare_a_run_with_itself_overlaps_fully_and_its_transfer_is_its_own_ticket(own, capsys):
    _, model, run = own
    capsys.readouterr()
    assert main(["compare", str(run), str(run), "--model", model, "--transfer", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["round"] == 1 and payload["overlap"]["iou"] == 1.0
    assert 0 < payload["overlap"]["random_iou"] < 1
    # The same mask, the same rewind point, trained as the run trained it: the run's own ticket, exactly.
    assert payload["transfer"]["transfer"]["mean_psnr"] == payload["transfer"]["own"]["mean_psnr"]
    assert payload["transfer"]["transfer"]["mean_input_psnr"] == payload["transfer"]["own"]["mean_input_psnr"]
    own_a, own_b = payload["rewind_magnitude"]["a"], payload["rewind_magnitude"]["b"]
    assert own_a == own_b and 0 < own_a["iou"] <= 1


def test_compare_shows_how_much_of_a_ticket_its_rewind_weights_magnitudes_choose(own, tmp_path, capsys):
    _, model, source = own
    run = _copy(source, tmp_path)
    mask = load_file(str(RunLayout(run).mask(1)))
    rewind = RunLayout(run).pruner_state() / "rewind.safetensors"
    # rewind weights as large as the ticket's kept entries: their magnitude mask is the ticket itself
    save_file({k: m.float() * 2 + 0.1 for k, m in mask.items()}, str(rewind))
    capsys.readouterr()
    assert main(["compare", str(run), str(run), "--model", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rewind_magnitude"]["a"]["iou"] == 1.0
    # the pruned entries the large ones: the magnitude mask takes all P of them and only K - P kept ones
    save_file({k: 1 - m.float() for k, m in mask.items()}, str(rewind))
    kept, pruned = sum(int(m.sum()) for m in mask.values()), sum(int((m == 0).sum()) for m in mask.values())
    assert all(int(m.sum()) >= int((m == 0).sum()) for m in mask.values())  # density 0.8: K >= P per tensor
    assert main(["compare", str(run), str(run), "--model", model]) == 0
    iou = (kept - pruned) / (kept + pruned)
    assert f"magnitude mask (same per-tensor counts): A {iou:.3f}, B {iou:.3f}" in capsys.readouterr().out
    # a damaged rewind file: the overlap is still shown, the reference is left out, the transfer names the file
    rewind.write_bytes(b"not a safetensors file")
    assert main(["compare", str(run), str(run), "--model", model]) == 0
    text = capsys.readouterr().out
    assert "overall IoU 1.000" in text and "magnitude mask" not in text
    one_error_line(capsys, ["compare", str(run), str(run), "--model", model, "--transfer"], "rewind.safetensors")


def test_compare_two_seeds_overlaps_partly_and_the_table_shows_the_random_baseline(own, other, capsys):
    folder, model, run = own
    capsys.readouterr()
    assert main(["compare", str(run), str(other), "--model", model, "--json"]) == 0
    overlap = json.loads(capsys.readouterr().out)["overlap"]
    assert 0 < overlap["iou"] < 1 and set(overlap["layers"]) == {"a.weight", "b.weight"}
    assert main(["compare", str(run), str(other), "--model", model, "--transfer"]) == 0
    text = capsys.readouterr().out
    assert "random" in text and "overall" in text and "A's ticket on B" in text and "B's input" in text
    one_error_line(capsys, ["compare", str(run), str(other), "--model", model, "--round", "0", "--transfer"], "dense")
    one_error_line(capsys, ["compare", str(run), str(folder), "--model", model], "not a lotteryir run")


def test_the_transfer_trains_as_mask_from_as_rewind_point_as_b_trains(own, other, monkeypatch):
    # A (seed 3, rewinds to step 1) and B (seed 4, rewinds to init) differ in mask and in start: the
    # network handed to B's trainer must hold A's mask and A's rewind weights (zero where A prunes).
    _, model, run_a = own
    register_import_path(model)
    seen: dict = {}
    real_build = compare.build_run

    def build(config):
        built = real_build(config)
        train = built.trainer

        def recording(net, ctx):
            seen["weights"] = {k: t.detach().clone() for k, t in named_tensors(net).items()}
            seen["mask"] = {n[: -len("_mask")]: b.clone() for n, b in net.named_buffers() if n.endswith("weight_mask")}
            seen["seed"], seen["round"] = ctx.seed, ctx.round
            return train(net, ctx)

        built.trainer = recording
        return built

    monkeypatch.setattr(compare, "build_run", build)
    result = compare.transfer_ticket(run_a, other)
    mask_a, mask_b = (load_file(str(RunLayout(r).mask(1))) for r in (run_a, other))
    start_a, start_b = (load_file(str(RunLayout(r).pruner_state() / "rewind.safetensors")) for r in (run_a, other))
    assert any(not torch.equal(mask_a[k], mask_b[k]) for k in mask_a)  # the two runs differ in both
    assert any(not torch.equal(start_a[k], start_b[k]) for k in start_a)
    assert seen["mask"].keys() == mask_a.keys() == {"a.weight", "b.weight"}
    assert all(torch.equal(seen["mask"][k].bool(), mask_a[k].bool()) for k in mask_a)
    assert seen["weights"].keys() == start_a.keys()
    for k, w in seen["weights"].items():
        expected = start_a[k] * mask_a[k] if k in mask_a else start_a[k]
        assert torch.equal(w, expected), k
    assert (seen["seed"], seen["round"], result.round) == (4, 1, 1)  # trained as B trains its round 1
    assert result.density == Mask.load(RunLayout(run_a).mask(1)).density


def test_stability_and_compare_on_a_tiny_mirl_run(tmp_path, capsys):
    run = tmp_path / "mirl"
    prune = ["prune", "--model", "mirl", "--size", "tiny", "--rounds", "1", *OWN_MODEL_ARGS, "--out", str(run)]
    assert main(prune) == 0
    assert main(["stability", str(run), "--round", "1", "--rewind-steps", "1"]) == 0
    data = json.loads(RunLayout(run).stability.read_text())
    assert [(e["k"], e["steps"]) for e in data["rewind_steps"]] == [(1, 1)]  # a round (2 steps) minus k
    assert set(data["input_psnr"]) == set(data["rewind_steps"][0]["psnr"])  # every test set, with its input
    capsys.readouterr()
    assert main(["compare", str(run), str(run), "--json"]) == 0
    overlap = json.loads(capsys.readouterr().out)["overlap"]
    assert overlap["iou"] == 1.0 and len(overlap["layers"]) > 10


def test_stability_of_the_dense_round_as_json(own, tmp_path, capsys):
    _, model, source = own
    run = _copy(source, tmp_path)
    capsys.readouterr()
    assert main(["stability", str(run), "--model", model, "--round", "0", "--rewind-steps", "1", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(RunLayout(run).stability.read_text())  # what is stored is what is printed
    assert printed["round"] == 0 and printed["density"] == 1.0 and len(printed["rewind_steps"]) == 1
