"""The default training closure: learns, is deterministic, resumes bit-exactly, fails clearly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from lotteryir.engine import NonFiniteLossError, RestorationTrainer, TrainConfig
from lotteryir.engine.train import TrainingStopped, TrainProgress, lr_at
from lotteryir.pruning.context import RoundContext


class TinyRestorer(nn.Module):
    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(dropout), nn.Conv2d(8, 3, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class NoisyPatches(torch.utils.data.Dataset):
    """Clean patches with Gaussian noise; a random flip per item drawn from the global RNG, as augmentations do."""

    def __init__(self, n: int = 24, size: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        self.clean = torch.rand(n, 3, size, size, generator=g)
        self.noise = 0.1 * torch.randn(n, 3, size, size, generator=g)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> dict:
        clean = self.clean[i]
        if torch.rand(()) < 0.5:
            clean = clean.flip(-1)
        return {"input": clean + self.noise[i], "target": clean, "task": "denoise_25", "name": f"p{i}"}


def _model(seed: int = 0, dropout: float = 0.0, masked: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    model = TinyRestorer(dropout)
    if masked:
        for conv in (model.body[0], model.body[3]):
            prune.random_unstructured(conv, "weight", amount=0.5)
    return model


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_round_reduces_loss_on_fixed_batch() -> None:
    data = NoisyPatches()
    items = [data[i] for i in range(8)]
    batch = torch.stack([it["input"] for it in items]), torch.stack([it["target"] for it in items])
    model = _model()
    with torch.no_grad():
        before = F.l1_loss(model(batch[0]), batch[1]).item()
    metrics = RestorationTrainer(data, TrainConfig(steps=60, batch_size=4, lr=2e-3, device="cpu"))(
        model, RoundContext(round=0, density=1.0)
    )
    with torch.no_grad():
        after = F.l1_loss(model(batch[0]), batch[1]).item()
    assert after < 0.7 * before, (before, after)
    assert metrics["steps"] == 60 and metrics["lr_final"] < 2e-3 and metrics["loss_last"] < metrics["loss"]


def test_same_seed_gives_bit_identical_weights() -> None:
    config = TrainConfig(epochs=2, batch_size=4, grad_accum=2, clip_grad=1.0, device="cpu", seed=7)
    runs = []
    for _ in range(2):
        model = _model(dropout=0.2, masked=True)
        RestorationTrainer(NoisyPatches(), config)(model, RoundContext(round=1, density=0.5))
        runs.append(_weights(model))
    _assert_bit_identical(runs[0], runs[1])
    other = _model(dropout=0.2, masked=True)
    RestorationTrainer(NoisyPatches(), TrainConfig(epochs=2, batch_size=4, device="cpu", seed=8))(
        other, RoundContext(round=1, density=0.5)
    )
    assert not torch.equal(other.state_dict()["body.0.weight_orig"], runs[0]["body.0.weight_orig"])


def test_masked_weights_stay_zero_and_steps_are_reported() -> None:
    model = _model(masked=True)
    marks: list[int | None] = []
    seen: list[TrainProgress] = []
    ctx = RoundContext(round=0, density=1.0, rewind_step=3, _on_mark=marks.append)
    data = NoisyPatches()
    RestorationTrainer(data, TrainConfig(steps=8, batch_size=4, device="cpu"), progress=seen.append)(model, ctx)
    assert marks == [3] and ctx.steps_done == 8
    assert [p.step for p in seen] == list(range(1, 9)) and seen[-1].total_steps == 8
    assert data.epochs == [0, 1]  # 6 steps per epoch: set_epoch called at each epoch start
    conv = model.body[0]
    assert torch.all(conv.weight[conv.weight_mask == 0] == 0)


def _resume_config(**kw) -> TrainConfig:
    return TrainConfig(steps=14, batch_size=4, grad_accum=2, lr=1e-3, device="cpu", checkpoint_every=5, seed=3, **kw)


def test_resume_after_stop_is_bit_identical(tmp_path: Path) -> None:
    reference = _model(dropout=0.2, masked=True)
    RestorationTrainer(NoisyPatches(), _resume_config())(
        reference, RoundContext(round=2, density=0.64, checkpoint_dir=tmp_path / "a")
    )

    calls = {"n": 0}

    def stop_after_seven() -> bool:
        calls["n"] += 1
        return calls["n"] == 7

    model = _model(dropout=0.2, masked=True)
    ctx = RoundContext(round=2, density=0.64, checkpoint_dir=tmp_path / "b")
    with pytest.raises(TrainingStopped, match="after step 7"):
        RestorationTrainer(NoisyPatches(), _resume_config(should_stop=stop_after_seven))(model, ctx)
    assert json.loads((tmp_path / "b" / "train_state.json").read_text())["step"] == 7

    # A new process would rebuild the model with the same masks; weights come from the checkpoint.
    fresh = _model(seed=99, dropout=0.2, masked=True)
    metrics = RestorationTrainer(NoisyPatches(), _resume_config())(fresh, ctx)
    assert metrics["resumed_from"] == 7 and metrics["steps"] == 14
    _assert_bit_identical(_weights(fresh), _weights(reference))


def test_resume_after_crash_uses_last_periodic_checkpoint(tmp_path: Path) -> None:
    reference = _model(dropout=0.2)
    RestorationTrainer(NoisyPatches(), _resume_config())(reference, RoundContext(round=0, density=1.0))

    def crash(p: TrainProgress) -> None:
        if p.step == 8:
            raise KeyboardInterrupt

    model = _model(dropout=0.2)
    ctx = RoundContext(round=0, density=1.0, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        RestorationTrainer(NoisyPatches(), _resume_config(), progress=crash)(model, ctx)
    metrics = RestorationTrainer(NoisyPatches(), _resume_config())(_model(seed=5, dropout=0.2), ctx)
    assert metrics["resumed_from"] == 5
    resumed = _model(seed=6, dropout=0.2)
    RestorationTrainer(NoisyPatches(), _resume_config())(resumed, ctx)  # finished round: a no-op
    _assert_bit_identical(_weights(resumed), _weights(reference))


class BlowsUp(TinyRestorer):
    """Returns NaN from the 13th forward pass on, like a diverging run."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = super().forward(x)
        return out * float("nan") if self.calls > 12 else out


def test_non_finite_loss_names_step_and_lr_and_keeps_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BlowsUp()
    config = TrainConfig(steps=20, batch_size=4, grad_accum=2, device="cpu", checkpoint_every=4)
    with pytest.raises(NonFiniteLossError, match=r"step 7 of round 1 with learning rate .*step 4\)") as err:
        RestorationTrainer(NoisyPatches(), config)(model, RoundContext(round=1, density=0.8, checkpoint_dir=tmp_path))
    assert err.value.step == 7 and err.value.lr == pytest.approx(lr_at(6, 20, round(20 * 15 / 120), 2e-4))
    record = json.loads((tmp_path / "train_state.json").read_text())
    assert record["step"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train_model-00000004.safetensors",
        "train_optim-00000004.pt",
        "train_state.json",
    ]


def test_changed_setup_refuses_to_resume_and_other_rounds_are_ignored(tmp_path: Path) -> None:
    ctx = RoundContext(round=1, density=0.8, checkpoint_dir=tmp_path)
    RestorationTrainer(NoisyPatches(), TrainConfig(steps=3, batch_size=4, device="cpu"))(_model(), ctx)
    with pytest.raises(ValueError, match="batch_size: checkpoint 4, now 6"):
        RestorationTrainer(NoisyPatches(), TrainConfig(steps=3, batch_size=6, device="cpu"))(_model(), ctx)
    later = RoundContext(round=2, density=0.64, checkpoint_dir=tmp_path)
    metrics = RestorationTrainer(NoisyPatches(), TrainConfig(steps=3, batch_size=6, device="cpu"))(_model(), later)
    assert metrics["resumed_from"] == 0 and metrics["steps"] == 3


def test_schedule_and_config_validation() -> None:
    lrs = [lr_at(s, 120, 15, 2e-4) for s in range(120)]
    assert lrs[0] == pytest.approx(2e-4 / 15) and lrs[14] == pytest.approx(2e-4) and max(lrs) == pytest.approx(2e-4)
    assert all(a >= b for a, b in zip(lrs[14:], lrs[15:])) and 0 < lrs[-1] < 1e-6
    stretched = [lr_at(s, 150, 15, 2e-4) for s in range(120)]  # PromptIR: 120 of 150 epochs
    assert stretched[-1] == pytest.approx(2e-4 * 0.5 * (1 + math.cos(math.pi * 104 / 135)))
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(epochs=1, steps=1)
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="too small"):
        RestorationTrainer(NoisyPatches(n=3), TrainConfig(batch_size=4)).plan()
    assert RestorationTrainer(NoisyPatches(n=24), TrainConfig(batch_size=4)).plan() == (6, 720, 90)


def test_trains_through_the_pruning_bridge(tmp_path: Path) -> None:
    from lotteryir.pruning import Mask, attach_masks, effective_weights, find_prunable, global_magnitude

    model = _model()
    params = dict(model.named_parameters())
    weights = {n: params[n].detach().clone() for n in ("body.0.weight", "body.3.weight")}
    mask = global_magnitude(weights, Mask.ones_like(weights), 0.6)
    attach_masks(model, mask)
    ctx = RoundContext(round=1, density=mask.density, checkpoint_dir=tmp_path)
    RestorationTrainer(NoisyPatches(), TrainConfig(steps=4, batch_size=4, device="cpu", checkpoint_every=2))(model, ctx)
    for name, w in effective_weights(find_prunable(model)).items():
        assert torch.all(w[~mask[name]] == 0), name
    assert any(k.endswith("weight_mask") for k in model.state_dict())


def test_schedule_horizon_stretches_the_cosine() -> None:
    config = TrainConfig(steps=8, batch_size=4, device="cpu", warmup_steps=1, schedule_horizon=1.25)
    metrics = RestorationTrainer(NoisyPatches(), config)(_model(), RoundContext(round=0, density=1.0))
    assert metrics["lr_final"] == pytest.approx(lr_at(7, 10, 1, 2e-4))
