"""3b. NaN, infinity or a lost file in a checkpoint is named as damage with its remedy, before it is used.

Training never writes a checkpoint holding NaN or infinity (it stops with the divergence advice instead), so
one found later was damaged on disk: the message names the file and the way back, never the learning rate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lotteryir.analysis.compare import rewind_point
from lotteryir.cli import main
from lotteryir.engine import NonFiniteLossError, RestorationTrainer, TrainConfig, TrainingStopped
from lotteryir.engine.failures import DamagedCheckpointError
from lotteryir.pruning import Mask
from lotteryir.pruning.context import RoundContext
from lotteryir.pruning.ticket import load_compact
from lotteryir.runs import PruningRun, RunConfig, RunError

from ..engine.test_train import NoisyPatches, _model
from ..tiny_run import TINY, TINY_ARGS
from .errors import listing, one_error_line
from .test_hostile_files import _header, _rewrite

NAN = float("nan")


# --------------------------------------------------------------------------- the trainer's own checkpoints
def _config(**changes) -> TrainConfig:
    return TrainConfig(**{"steps": 4, "batch_size": 4, "device": "cpu", "checkpoint_every": 1, **changes})


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def stopped(tmp_path) -> tuple[Path, dict]:
    """A round-1 checkpoint after step 2 of 4, and the weights an uninterrupted training ends with."""
    ckpt = tmp_path / "ckpt"
    calls = iter(range(100))
    config = _config(should_stop=lambda: next(calls) >= 1)
    with pytest.raises(TrainingStopped):
        RestorationTrainer(NoisyPatches(), config)(_model(), RoundContext(round=1, density=1.0, checkpoint_dir=ckpt))
    reference = _model()
    RestorationTrainer(NoisyPatches(), _config())(reference, RoundContext(round=1, density=1.0))
    return ckpt, _weights(reference)


def _files(ckpt: Path) -> tuple[Path, Path]:
    record = json.loads((ckpt / "train_state.json").read_text())
    assert record["step"] == 2
    return ckpt / record["model_file"], ckpt / record["optim_file"]


def _poison_model(path: Path) -> str:
    tensors = load_file(str(path))
    tensors["body.3.weight"][0, 0, 0, 0] = NAN
    save_file(tensors, str(path))
    return "body.3.weight"


def _poison_optimizer(path: Path) -> str:
    state = torch.load(path, weights_only=True)
    state["optimizer"]["state"][2]["exp_avg_sq"][0] = float("inf")
    torch.save(state, path)
    return "optimizer.state.2.exp_avg_sq"


@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda m, o: _poison_model(m), ["model", "NaN or infinite", "body.3.weight"]),
        (lambda m, o: _poison_optimizer(o), ["optim", "NaN or infinite", "optimizer.state.2.exp_avg_sq"]),
        (lambda m, o: m.unlink(), ["model", "is missing"]),
        (lambda m, o: o.unlink(), ["optim", "is missing"]),
        (lambda m, o: m.write_bytes(m.read_bytes()[:100]), ["model", "unreadable"]),
    ],
    ids=["nan-weights", "inf-optimizer", "no-model-file", "no-optimizer-file", "cut-model-file"],
)
def test_a_damaged_checkpoint_is_named_before_use_and_deleting_it_restarts_the_training(stopped, damage, expect):
    ckpt, reference = stopped
    model_file, optim_file = _files(ckpt)
    damage(model_file, optim_file)
    model = _model()
    before = _weights(model)
    ctx = RoundContext(round=1, density=1.0, checkpoint_dir=ckpt)
    with pytest.raises(DamagedCheckpointError) as err:
        RestorationTrainer(NoisyPatches(), _config())(model, ctx)
    message = str(err.value)
    named = model_file if expect[0] == "model" else optim_file
    assert str(named) in message and all(e in message for e in expect[1:]), message
    assert f"delete {ckpt}" in message and "round 1" in message, message
    assert "lower" not in message and "learning rate" not in message, message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the model was changed"
    # The remedy: without the checkpoint the round trains from its first step, as if never interrupted.
    shutil.rmtree(ckpt)
    model = _model()
    RestorationTrainer(NoisyPatches(), _config())(model, RoundContext(round=1, density=1.0, checkpoint_dir=ckpt))
    assert all(torch.equal(reference[k], v) for k, v in model.state_dict().items())


def test_weights_that_turn_non_finite_are_never_checkpointed(tmp_path):
    """The divergence is reported as one (with the lr advice), and the last good checkpoint stays intact."""
    model = _model()
    ctx = RoundContext(round=1, density=1.0, checkpoint_dir=tmp_path)

    def diverge(k: int) -> None:
        if k == 3:  # after step 3's update, as a blown-up optimizer step leaves them; the loss was finite
            with torch.no_grad():
                model.body[0].bias[1] = float("inf")

    ctx.on_step(diverge)
    with pytest.raises(NonFiniteLossError) as err:
        RestorationTrainer(NoisyPatches(), _config())(model, ctx)
    assert err.value.weights == ["body.0.bias"] and err.value.step == 3, err.value
    assert "non-finite weights" in str(err.value) and "step 2" in str(err.value), err.value
    assert "the weights became NaN or infinite in 1 tensor(s) (body.0.bias)" == err.value.what
    model_file, _ = _files(tmp_path)  # still step 2's, whole
    assert all(torch.isfinite(v).all() for v in load_file(str(model_file)).values() if v.is_floating_point())


# --------------------------------------------------------------------------- a run's mid-round checkpoint
@pytest.fixture(scope="module")
def mid_round(finished_run, tmp_path_factory) -> tuple[Path, Path]:
    """(a copy of the tiny run stopped after step 1 of a third pruned round, the same run not stopped)."""
    longer = RunConfig(**{**TINY, "rounds": 3})
    base = tmp_path_factory.mktemp("mid")
    stopped, reference = base / "stopped", base / "reference"
    for copy in (stopped, reference):
        shutil.copytree(finished_run, copy)
    with pytest.raises(TrainingStopped):
        PruningRun(stopped, longer, should_stop=lambda: True).run()
    PruningRun(reference, longer).run()
    return stopped, reference


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_nan_in_a_runs_mid_round_checkpoint_is_damage_not_a_learning_rate(mid_round, tmp_path, capsys):
    """The audit's case: it was trained on, diverged, and the advice was a lower --lr."""
    run = tmp_path / "run"
    shutil.copytree(mid_round[0], run)
    ckpt = run / "rounds" / "r03" / "ckpt"
    model_file = ckpt / json.loads((ckpt / "train_state.json").read_text())["model_file"]
    tensors = load_file(str(model_file))
    name = next(k for k in tensors if k.endswith("weight_orig"))
    tensors[name][0] = NAN
    save_file(tensors, str(model_file))
    before = {k: v for k, v in listing(run).items() if k != "lock"}
    argv = ["prune", *TINY_ARGS, "--rounds", "3", "--out", str(run)]
    assert main(argv) == 1
    errors = _error_lines(capsys)
    assert len(errors) == 1, errors
    line = errors[0]
    assert str(model_file) in line and name in line and f"delete {ckpt} and rerun the same command" in line, line
    assert "--lr" not in line and "learning rate" not in line, line
    assert {k: v for k, v in listing(run).items() if k != "lock"} == before  # nothing trained, nothing written
    # Following the advice finishes the round exactly as the uninterrupted run did.
    shutil.rmtree(ckpt)
    assert main(argv) == 0
    mine, _, _ = load_compact(run / "rounds" / "r03" / "ticket.safetensors")
    theirs, _, _ = load_compact(mid_round[1] / "rounds" / "r03" / "ticket.safetensors")
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


def test_a_lost_mid_round_model_file_is_named_with_its_remedy(mid_round, tmp_path, capsys):
    """It was a raw "No such file or directory"."""
    run = tmp_path / "run"
    shutil.copytree(mid_round[0], run)
    ckpt = run / "rounds" / "r03" / "ckpt"
    model_file = ckpt / json.loads((ckpt / "train_state.json").read_text())["model_file"]
    model_file.unlink()
    assert main(["prune", *TINY_ARGS, "--rounds", "3", "--out", str(run)]) == 1
    errors = _error_lines(capsys)
    assert len(errors) == 1 and f"{model_file} is missing" in errors[0], errors
    assert f"delete {ckpt} and rerun the same command" in errors[0], errors


# --------------------------------------------------------------------------- the pruner's committed state
@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


@pytest.mark.parametrize("name", ["model.safetensors", "rewind.safetensors"])
def test_nan_in_the_pruner_state_is_named_as_damage(run_copy, capsys, name):
    path = run_copy / "pruner" / name
    tensors = load_file(str(path))
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[key][0] = NAN
    save_file(tensors, str(path))
    before = {k: v for k, v in listing(run_copy).items() if k != "lock"}
    line = one_error_line(capsys, ["prune", *TINY_ARGS, "--out", str(run_copy)], f"{path} is damaged", key)
    assert "NaN or infinite" in line and "backup" in line and "new --out" in line, line
    assert "--lr" not in line, line
    assert {k: v for k, v in listing(run_copy).items() if k != "lock"} == before


def test_nan_in_the_rewind_point_is_named_to_the_analyses(run_copy):
    path = run_copy / "pruner" / "rewind.safetensors"
    tensors = load_file(str(path))
    tensors["output.weight"][0] = NAN
    save_file(tensors, str(path))
    with pytest.raises(RunError, match=r"rewind\.safetensors holds NaN .*output\.weight.*damaged.*backup"):
        rewind_point(run_copy)  # what compare --transfer starts A's ticket from


def test_a_float_mask_with_nan_is_refused(tmp_path):
    path = tmp_path / "mask.safetensors"
    save_file({"conv.weight": torch.tensor([1.0, NAN, 0.0])}, str(path))  # NaN would read as True: kept
    with pytest.raises(ValueError, match=r"mask\.safetensors holds NaN or infinite values in 1 tensor\(s\) \(conv"):
        Mask.load(path)


# --------------------------------------------------------------------------- export
@pytest.fixture
def nan_round(run_copy) -> tuple[Path, str]:
    """The run whose round 2 ticket has one layer holding NaN, under valid checksums (what re-signing makes)."""
    ticket = run_copy / "rounds" / "r02" / "ticket.safetensors"
    tensors = load_file(str(ticket))
    key = next(k for k, v in tensors.items() if "::" not in k and v.is_floating_point() and v.dim() == 1)
    tensors[key] = torch.full_like(tensors[key], NAN)
    _rewrite(ticket, _header(ticket), tensors)
    return run_copy, key


@pytest.mark.parametrize("source", ["run", "ticket"])
def test_export_refuses_nan_weights_unless_allowed(nan_round, tmp_path, capsys, source):
    run, layer = nan_round
    src = run if source == "run" else run / "rounds" / "r02" / "ticket.safetensors"
    out = tmp_path / "out.safetensors"
    line = one_error_line(capsys, ["export", str(src), "-o", str(out)], layer, "--allow-nonfinite")
    assert "NaN or infinite" in line, line
    assert not out.exists(), "a NaN ticket was re-signed with fresh checksums"
    assert main(["export", str(src), "-o", str(out), "--allow-nonfinite"]) == 0
    state, _, _ = load_compact(out)
    assert torch.isnan(state[layer]).all()  # asked for: written as it is
