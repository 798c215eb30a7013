"""A run that starts from trained weights (`prune --from`): every format, round 0 evaluated, rewinds to them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lotteryir.checkpoints import save_ticket
from lotteryir.cli import main
from lotteryir.engine import evaluate
from lotteryir.models import build_model
from lotteryir.runs import PruningRun, RunConfig, RunError, RunLayout, build_run, read_config, read_history

from ..reliability.errors import one_error_line
from ..tiny_run import TINY

# One task, one test image: what these tests check is where the weights come from, not what they learn.
SMALL = {**TINY, "tasks": ["denoise_25"], "data_paths": {"max_images": 1, "test_max_side": 48}, "threads": 1}


def _trained(seed: int = 11) -> dict[str, torch.Tensor]:
    """Weights of mirl/tiny unlike any the run would draw itself (every tensor non-zero)."""
    torch.manual_seed(seed)
    model = build_model("mirl", "tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return {k: v.clone() for k, v in model.state_dict().items()}


def _write(state: dict[str, torch.Tensor], path: Path, fmt: str) -> Path:
    if fmt == "safetensors":
        save_file(state, str(path))
    elif fmt == "torch":
        torch.save(state, path)
    elif fmt == "lightning":  # a Lightning checkpoint of a module that holds the network as `net`
        torch.save({"state_dict": {f"net.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    elif fmt == "ticket":
        model = build_model("mirl", "tiny")
        model.load_state_dict(state)
        save_ticket(model, path, name="mirl", size="tiny")
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return _write(_trained(), tmp_path_factory.mktemp("w") / "trained.safetensors", "safetensors")


@pytest.mark.parametrize("fmt", ["safetensors", "torch", "lightning", "ticket"])
def test_every_weight_format_starts_the_network_exactly(tmp_path, fmt):
    state = _trained()
    path = _write(state, tmp_path / f"w.{fmt}", fmt)
    built = build_run(RunConfig(**SMALL, from_weights=str(path)).resolved())
    loaded = built.model.state_dict()
    # The pruner holds the weights as weight_orig (masks attached); compare what the network computes with.
    for name, value in state.items():
        here = loaded.get(name, loaded.get(name.replace(".weight", ".weight_orig")))
        assert torch.equal(here, value), name


def test_round0_evaluates_the_given_weights_and_every_round_rewinds_to_them(tmp_path, weights):
    out = tmp_path / "run"
    config = RunConfig(**SMALL, from_weights=str(weights))
    history = PruningRun(out, config).run()
    r0 = history[0]
    assert r0["train"]["steps"] == 0 and r0["train"]["trained"] is False
    # Round 0's scores are those of the given weights themselves.
    model = build_model("mirl", "tiny")
    model.load_state_dict(load_file(str(weights)))
    built = build_run(config.resolved())
    direct = evaluate(model, built.test_sets, device="cpu").summary()
    assert r0["eval"]["denoise_25/sample"]["psnr"] == pytest.approx(direct["denoise_25/sample"]["psnr"], abs=1e-6)
    assert [h["train"]["steps"] for h in history[1:]] == [4, 4]
    # The rewind point the run saved is the given weights, bit for bit.
    saved = read_config(out)
    assert saved.rewind == "from" and saved.dense_round == "evaluate"
    rewind = load_file(str(RunLayout(out).pruner / "rewind.safetensors"))
    given = load_file(str(weights))
    for name, value in given.items():
        key = name if name in rewind else name.replace(".weight", ".weight_orig")
        assert torch.equal(rewind[key], value), name


def test_rewind_from_is_bit_exact_after_pruning(weights):
    """Round 1 starts from the given weights with the new mask applied: survivors equal, the rest zero."""
    built = build_run(RunConfig(**{**SMALL, "rounds": 1}, from_weights=str(weights)).resolved())
    pruner = built.pruner
    seen: dict[str, torch.Tensor] = {}

    def closure(model, ctx):
        if ctx.round == 1:
            seen.update({k: v.detach().clone() for k, v in pruner.export_state_dict().items()})
        return built.train_and_evaluate(model, ctx)

    pruner.train = closure
    pruner.run()
    given = load_file(str(weights))
    mask = pruner.mask
    assert 0.79 < mask.density < 0.81
    for name, keep in mask.items():
        assert torch.equal(seen[name], given[name] * keep), name


def test_a_resume_with_other_weights_is_refused(tmp_path, weights):
    out = tmp_path / "run"
    PruningRun(out, RunConfig(**{**SMALL, "rounds": 0}, from_weights=str(weights))).run()
    other = _write(_trained(seed=12), tmp_path / "other.safetensors", "safetensors")
    with pytest.raises(RunError, match="--from weights"):
        PruningRun(out, RunConfig(**{**SMALL, "rounds": 1}, from_weights=str(other)))
    # The same weights under another name are the same start: the run grows by a round.
    moved = tmp_path / "moved.safetensors"
    moved.write_bytes(weights.read_bytes())
    PruningRun(out, RunConfig(**{**SMALL, "rounds": 1}, from_weights=str(moved))).run()
    assert [h["round"] for h in read_history(out)] == [0, 1]


def test_dense_round_train_fine_tunes_the_given_weights_first(tmp_path, weights):
    history = PruningRun(
        tmp_path / "run", RunConfig(**{**SMALL, "rounds": 0}, from_weights=str(weights), dense_round="train")
    ).run()
    assert history[0]["train"]["steps"] == 4


def test_steps_0_prunes_and_evaluates_without_training(tmp_path, weights):
    config = RunConfig(**{**SMALL, "steps": 0, "rounds": 1}, from_weights=str(weights), method="lr-rewind")
    history = PruningRun(tmp_path / "run", config).run()
    assert [h["train"]["steps"] for h in history] == [0, 0]
    assert history[1]["density"] == pytest.approx(0.8, abs=0.01)
    assert history[1]["cost"]["trainings"] == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rewind": "init"}, "--rewind from returns to them"),
        ({"rewind": "step:2"}, "--dense-round train"),
        ({"init": "identity"}, "leave --init out"),
        ({"method": "gmp", "rounds": None, "target_density": 0.5, "dense_round": "evaluate"}, "searches while round 0"),
    ],
)
def test_choices_that_cannot_go_with_from_are_named(weights, settings, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{**SMALL, **settings}, from_weights=str(weights)).resolved()


def test_batchnorm_is_recalibrated_by_default_only_where_nothing_retrains(weights):
    def batches(**settings):
        return RunConfig(**{**SMALL, **settings}, from_weights=str(weights)).resolved().bn_recalibrate

    assert batches(steps=0) == 10 and batches(steps=4) == 0
    assert batches(steps=0, bn_recalibrate=0) == 0 and batches(steps=4, bn_recalibrate=3) == 3


def test_rewind_from_and_steps_0_need_from():
    with pytest.raises(ValueError, match="give --from WEIGHTS"):
        RunConfig(**SMALL, rewind="from").resolved()
    with pytest.raises(ValueError, match="needs --from"):
        RunConfig(**{**SMALL, "steps": 0}).resolved()


def test_cli_from_records_the_weights_and_refuses_a_missing_file(tmp_path, weights, capsys):
    args = ["prune", "--model", "mirl", "--size", "tiny", "--data-path", "max_images=1", "--data-path"]
    args += ["test_max_side=48", "--tasks", "denoise_25", "--rounds", "0", "--steps", "2", "--batch-size", "2"]
    args += ["--patch-size", "32", "--device", "cpu", "--threads", "1"]
    assert main([*args, "--from", str(weights), "--out", str(tmp_path / "run")]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["from_weights"] == str(weights.resolve()) and len(config["from_weights_sha256"]) == 64
    capsys.readouterr()
    missing = [*args, "--from", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "run2")]
    one_error_line(capsys, missing, "--from: no such file", "nope.safetensors")
    assert not (tmp_path / "run2").exists()


def test_a_file_that_does_not_fit_the_network_is_named(tmp_path):
    wrong = _trained()
    wrong.pop(next(iter(wrong)))
    path = _write(wrong, tmp_path / "wrong.safetensors", "safetensors")
    with pytest.raises(RunError, match="--from .*wrong.safetensors"):
        build_run(RunConfig(**SMALL, from_weights=str(path)).resolved())


@pytest.mark.parametrize(
    ("method", "settings"),
    [
        ("imp", {"rounds": 1}),
        ("lr-rewind", {"rounds": 1}),
        ("oneshot", {"rounds": None, "target_density": 0.5}),
        ("gmp", {"rounds": None, "target_density": 0.5, "method_options": {"every": 1}}),
        ("early-bird", {"rounds": None, "target_density": 0.5, "method_options": {"every": 1}}),
        ("snip", {"rounds": None, "target_density": 0.5}),
        ("synflow", {"rounds": None, "target_density": 0.5, "method_options": {"iterations": 2}}),
    ],
)
def test_every_method_starts_from_the_given_weights(tmp_path, weights, method, settings):
    """Round 0 evaluates them where it is the dense training, trains them where the method prunes in it."""
    config = RunConfig(**{**SMALL, "steps": 2, **settings}, method=method, from_weights=str(weights))
    resolved = config.resolved()
    history = PruningRun(tmp_path / "run", config).run()
    round0_trains = method in ("gmp", "early-bird", "snip", "synflow")
    assert resolved.dense_round == ("train" if round0_trains else "evaluate")
    assert history[0]["train"]["steps"] == (2 if round0_trains else 0)
    assert history[-1]["density"] == pytest.approx(0.8 if method in ("imp", "lr-rewind") else 0.5, abs=0.01)
    assert resolved.rewind == ("none" if method == "lr-rewind" else "from")
