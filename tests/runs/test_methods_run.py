"""Pruning methods in runs on disk: stored in the configuration, resumable to the same result, refused if changed."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from lotteryir.engine.train import TrainingStopped
from lotteryir.pruning import Mask
from lotteryir.runs import PruningRun, RunConfig, RunError, read_history
from lotteryir.runs.config import resolved_from_dict

from ..tiny_run import TINY

GMP = {**TINY, "rounds": None, "target_density": 0.2, "steps": 8, "method": "gmp", "method_options": {"every": 2}}


def _stop_after(n: int):
    calls = []

    def should_stop() -> bool:  # the trainer asks once per step
        calls.append(1)
        return len(calls) >= n

    return should_stop


@pytest.fixture(scope="module")
def gmp_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("methods") / "gmp"
    PruningRun(out, RunConfig(**GMP)).run()
    return out


def test_gmp_run_reaches_the_target_and_records_its_schedule(gmp_run):
    config = json.loads((gmp_run / "config.json").read_text())
    assert (
        config["method"] == "gmp"
        and config["method_options"] == {"start": 0, "end": None, "every": 2}
        and config["rounds"] == 0
    )
    (entry,) = read_history(gmp_run)
    mask = Mask.load(gmp_run / "rounds" / "r00" / "mask.safetensors")
    # Each group keeps round(0.2 * its size): the zero-initialized output conv is pruned on its own.
    sizes = [mask["output.weight"].numel(), mask.num_total - mask["output.weight"].numel()]
    assert mask.num_remaining == entry["remaining"] == sum(round(0.2 * n) for n in sizes)
    assert [u[0] for u in entry["method"]["updates"]] == [2, 4, 6]  # end: 3/4 of 8 steps
    assert entry["method"]["reached_end"] and entry["train"]["steps"] == 8


def test_gmp_run_stopped_mid_round_resumes_to_the_same_result(gmp_run, tmp_path):
    out = tmp_path / "stopped"
    with pytest.raises(TrainingStopped):
        PruningRun(out, RunConfig(**GMP), should_stop=_stop_after(3)).run()
    saved = json.loads((out / "rounds" / "r00" / "ckpt" / "train_state.json").read_text())
    assert saved["step"] == 3  # between two mask updates: the masks come back from the checkpoint
    PruningRun(out, RunConfig(**GMP)).run()
    assert Mask.load(out / "rounds" / "r00" / "mask.safetensors") == Mask.load(
        gmp_run / "rounds" / "r00" / "mask.safetensors"
    )
    a, b = (load_file(str(d / "pruner" / "model.safetensors")) for d in (gmp_run, out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_history(out)[0]["method"] == read_history(gmp_run)[0]["method"]


def test_early_bird_run_stopped_mid_search_resumes_to_the_same_result(tmp_path):
    config = {**GMP, "method": "early-bird", "method_options": {"every": 1, "epsilon": 0.5, "patience": 2}}
    PruningRun(tmp_path / "ref", RunConfig(**config)).run()
    with pytest.raises(TrainingStopped):  # after step 2: one distance recorded, the last mask in the checkpoint
        PruningRun(tmp_path / "b", RunConfig(**config), should_stop=_stop_after(2)).run()
    PruningRun(tmp_path / "b", RunConfig(**config)).run()
    ref, resumed = read_history(tmp_path / "ref"), read_history(tmp_path / "b")
    assert ref[0]["method"]["stopped_at"] > 2  # the stop above came mid-search
    assert [h["method"] for h in resumed] == [h["method"] for h in ref]
    for r in (0, 1):
        masks = [Mask.load(d / "rounds" / f"r0{r}" / "mask.safetensors") for d in (tmp_path / "ref", tmp_path / "b")]
        assert masks[0] == masks[1]


def test_a_resumed_run_with_another_method_is_refused(gmp_run):
    with pytest.raises(RunError, match=r"--method \(a run keeps the method it started with\): 'gmp' -> 'oneshot'"):
        PruningRun(gmp_run, RunConfig(**{**GMP, "method": "oneshot", "method_options": {}}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "gmp", "target_density": None, "rounds": 2}, "--method gmp needs --target-density"),
        ({"method": "oneshot", "rounds": 3}, "--method oneshot takes --target-density, not --rounds"),
        ({"method": "nope"}, "--method: unknown pruning method 'nope'"),
        ({"method": "gmp", "method_options": {"patience": 2}}, "method 'gmp' has no option 'patience'"),
        ({"method": "gmp", "method_options": {"every": "x"}}, "every must be an integer"),
        ({"method": "gmp", "method_options": {"start": 5, "end": 3}}, "start < end"),
        ({"method": "gmp", "shuffle_within_layers": True}, "--shuffle-within-layers is the control of snip"),
        ({"method": "snip", "controls": ["random_prune"]}, "--controls follow a pruning round"),
        ({"method": "lr-rewind", "rewind": "step:2", "target_density": None, "rounds": 2}, "lr-rewind keeps"),
    ],
)
def test_method_settings_are_checked_with_one_message(change, message):
    base = {**TINY, "rounds": None, "target_density": 0.2}
    with pytest.raises(ValueError, match=message):
        RunConfig(**{**base, **change}).resolved()


def test_the_paper_preset_leaves_a_one_shot_method_its_target():
    c = RunConfig(preset="paper", data="/data/mirl", method="oneshot", target_density=0.05).resolved()
    assert (c.rounds, c.target_density, c.epochs) == (1, 0.05, 120)


def test_lr_rewind_is_imp_without_rewind_and_resolves_twice():
    c = RunConfig(**{**TINY, "method": "lr-rewind"}).resolved()
    assert c.rewind == "none" and c.rounds == 2 and resolved_from_dict(c.to_dict()) == c
    one = RunConfig(**{**TINY, "rounds": None, "target_density": 0.2, "method": "oneshot"}).resolved()
    assert one.rounds == 1 and resolved_from_dict(one.to_dict()) == one


def test_snip_and_synflow_runs_prune_before_their_one_training(tmp_path):
    for method, options in (("snip", {"batches": 1}), ("synflow", {"iterations": 2})):
        config = {**GMP, "steps": 2, "method": method, "method_options": options, "shuffle_within_layers": True}
        (entry,) = PruningRun(tmp_path / method, RunConfig(**config)).run()
        recorded = {"iterations": 2} if method == "synflow" else {}  # snip's batches are the run's
        facts = dict(entry["method"])
        unscored = facts.pop("unscored")  # parameters mirl defines and never calls get no gradient
        assert facts == {"name": method, **recorded, "shuffle": True, "target_density": 0.2}
        assert "chnl_reduce1.weight" in unscored and "encoder_level1.0.attn.qkv.weight" not in unscored
        assert entry["density"] == pytest.approx(0.2, abs=1e-5)
