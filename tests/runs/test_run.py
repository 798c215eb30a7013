import json

import pytest
import torch

from lotteryir.checkpoints import load_checkpoint, load_ticket
from lotteryir.pruning import Mask
from lotteryir.pruning.ticket import load_compact
from lotteryir.runs import PruningRun, RunConfig, RunError, export_run, read_history

from ..tiny_run import TINY


def test_run_directory_contents(finished_run):
    history = read_history(finished_run)
    assert [h["round"] for h in history] == [0, 1, 2]
    assert [h["density"] for h in history] == pytest.approx([1.0, 0.8, 0.64], abs=1e-5)
    assert set(history[0]["eval"]) == {"denoise_25/sample", "derain/sample"}
    for h in history:
        rdir = finished_run / "rounds" / f"r{h['round']:02d}"
        assert (rdir / "mask.safetensors").is_file() and (rdir / "samples.png").stat().st_size > 1000
        assert not list(rdir.glob("ckpt*")), "finished rounds leave no mid-round checkpoints"
        assert json.loads((rdir / "metrics.json").read_text())["mean_psnr"] == h["mean_psnr"]
        assert Mask.load(rdir / "mask.safetensors").density == pytest.approx(h["density"], abs=1e-5)
    assert (finished_run / "report.png").stat().st_size > 10_000
    config = json.loads((finished_run / "config.json").read_text())
    assert config["rounds"] == 2 and config["size"] == "tiny"


def test_round_ticket_holds_the_trained_weights(finished_run):
    state, mask, header = load_compact(finished_run / "rounds" / "r02" / "ticket.safetensors")
    assert header["model"] == "mirl" and header["size"] == "tiny" and header["round"] == 2
    from safetensors.torch import load_file

    pruned_form = load_file(str(finished_run / "pruner" / "model.safetensors"))
    for name in mask:
        assert torch.equal(state[name], pruned_form[name + "_orig"] * pruned_form[name + "_mask"]), name
    assert Mask.load(finished_run / "rounds" / "r02" / "mask.safetensors") == mask


def test_export_and_load_reproduce_weights_exactly(finished_run, tmp_path):
    meta = export_run(finished_run, tmp_path / "t.safetensors", round=1)
    assert meta["round"] == 1 and meta["model"] == "mirl"
    ticket = load_ticket(tmp_path / "t.safetensors")
    ref, mask, _ = load_compact(finished_run / "rounds" / "r01" / "ticket.safetensors")
    for k, v in ticket.model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert ticket.mask == mask
    assert load_checkpoint(tmp_path / "t.safetensors").fmt == "ticket"
    with pytest.raises(RunError, match="round 7 .* not finished"):
        export_run(finished_run, tmp_path / "x.safetensors", round=7)


def test_changed_configuration_is_refused(finished_run):
    with pytest.raises(RunError, match="different configuration .*rate"):
        PruningRun(finished_run, RunConfig(**{**TINY, "rate": 0.5}))
    # Operational settings may change; a finished run then has nothing left to do.
    run = PruningRun(finished_run, RunConfig(**{**TINY, "checkpoint_every": 7}))
    assert run.plan(estimate=False).trainings == 0
    assert len(run.run()) == 3


def test_not_a_run_and_non_empty_dir(tmp_path):
    with pytest.raises(RunError, match="not a lotteryir run directory"):
        PruningRun(tmp_path)
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(RunError, match="not empty but holds no run"):
        PruningRun(tmp_path, RunConfig(**TINY))


def test_bad_configurations():
    with pytest.raises(ValueError, match="--rate must be in"):
        RunConfig(**{**TINY, "rate": 0.0}).resolved()
    with pytest.raises(ValueError, match="--preset paper needs"):
        RunConfig(preset="paper").resolved()
    with pytest.raises(ValueError, match="--rounds or --target-density, not both"):
        RunConfig(**{**TINY, "target_density": 0.3}).resolved()
    assert RunConfig(**{**TINY, "rounds": None, "target_density": 0.107}).resolved().rounds == 10


def test_thread_count_is_chosen_before_training_and_kept_on_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # what "auto" then resolves to
    seen = []
    # Two threads on a busy machine make every step slow (OpenMP barriers): the least run that trains.
    small = {"rounds": 0, "steps": 1, "patch_size": 16, "tasks": ["denoise_25"]}
    small["data_paths"] = {"max_images": 1, "test_max_side": 16}
    config = RunConfig(**{**TINY, **small})
    from lotteryir.runs import RunCallbacks

    run = PruningRun(
        tmp_path / "run", config, RunCallbacks(on_step=lambda p, kind: seen.append(torch.get_num_threads()))
    )
    plan = run.plan(estimate=False)
    assert (plan.threads, plan.threads_reason) == (2, "OMP_NUM_THREADS")
    torch.set_num_threads(1)
    run.run()
    assert seen and set(seen) == {2}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["threads"] == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a resume with --threads auto keeps the run's own count
    resumed = PruningRun(tmp_path / "run", config).plan(estimate=False)
    assert resumed.threads == 2 and "bit-identical" in resumed.threads_reason


def test_identity_init_is_the_default_only_for_the_shipped_networks_on_sample_data():
    assert RunConfig(**TINY).resolved().init == "identity"
    assert RunConfig(**{**TINY, "init": "default"}).resolved().init == "default"
    # A user's own network may have no `output` convolution to zero: it starts as its builder draws it.
    assert RunConfig(**{**TINY, "model": "usernets.nets:TinyNet", "size": "default"}).resolved().init == "default"
    assert RunConfig(**{**TINY, "recipe": "mirl", "data": "/nowhere", "data_paths": {}}).resolved().init == "default"
    with pytest.raises(ValueError, match="--init must be one of default, identity"):
        RunConfig(**{**TINY, "init": "zeros"}).resolved()


def test_a_run_saved_before_init_existed_keeps_the_builders_initialization():
    saved = RunConfig(**TINY).resolved().to_dict()
    del saved["init"]
    assert RunConfig.from_dict(saved).init == "default"
    assert RunConfig.from_dict({**saved, "init": "identity"}).init == "identity"
