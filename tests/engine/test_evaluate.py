"""Evaluation gives structured, repeatable per-set scores."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lotteryir.engine import evaluate
from lotteryir.engine.evaluate import EvalResult


class GlobalNoiseImages(torch.utils.data.Dataset):
    """Whole images of varying sizes whose noise comes from the global RNG, the hardest case for repeatability."""

    def __init__(self, task: str, sizes: list[tuple[int, int]]) -> None:
        g = torch.Generator().manual_seed(4)
        # Smooth clean images, so a blur is a fair denoiser.
        coarse = [torch.rand(1, 3, 4, 4, generator=g) for _ in sizes]
        self.task = task
        self.clean = [F.interpolate(c, size=s, mode="bilinear", align_corners=False)[0] for c, s in zip(coarse, sizes)]

    def __len__(self) -> int:
        return len(self.clean)

    def __getitem__(self, i: int) -> dict:
        noisy = (self.clean[i] + 0.1 * torch.randn_like(self.clean[i])).clamp(0, 1)
        return {"input": noisy, "target": self.clean[i], "task": self.task, "name": f"img{i}.png"}


class Smoother(nn.Module):
    multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect", bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            for c in range(3):
                self.conv.weight[c, c] = 1 / 9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Recipe:
    def test_sets(self) -> dict[str, torch.utils.data.Dataset]:
        return {
            "denoise_25/tiny": GlobalNoiseImages("denoise_25", [(37, 53), (40, 31)]),
            "derain/tiny": GlobalNoiseImages("derain", [(33, 33)]),
        }


def test_evaluation_is_structured_and_identical_across_calls(tmp_path: Path) -> None:
    first = evaluate(Smoother(), Recipe(), device="cpu", save_dir=tmp_path)
    second = evaluate(Smoother(), Recipe(), device="cpu")
    assert first.to_dict() == second.to_dict()

    denoise = first.sets["denoise_25/tiny"]
    assert (denoise.task, denoise.dataset, len(denoise.images)) == ("denoise_25", "tiny", 2)
    assert denoise.psnr == sum(i.psnr for i in denoise.images) / 2
    noisy = evaluate(nn.Identity(), Recipe(), device="cpu").sets["denoise_25/tiny"]
    assert denoise.psnr > noisy.psnr + 3  # the blur removes noise
    assert sorted(p.name for p in (tmp_path / "denoise_25" / "tiny").iterdir()) == ["img0.png", "img1.png"]

    data = json.loads(json.dumps(first.to_dict()))
    assert EvalResult.from_dict(data) == first


def test_tiled_evaluation_and_y_channel() -> None:
    sets = {"derain/tiny": GlobalNoiseImages("derain", [(70, 45)])}
    whole = evaluate(Smoother(), sets, device="cpu", y_channel=True)
    tiled = evaluate(Smoother(), sets, device="cpu", y_channel=True, tile=32, overlap=8)
    assert abs(whole.sets["derain/tiny"].psnr - tiled.sets["derain/tiny"].psnr) < 0.05
    w, t = whole.sets["derain/tiny"], tiled.sets["derain/tiny"]
    # SSIM is scored on the tiled output too, and the blur improves it over the noisy input.
    assert abs(w.ssim - t.ssim) < 0.005
    assert 0 < w.input_ssim < w.ssim < 1 and 0 < t.input_ssim < t.ssim < 1
    assert whole.summary()["derain/tiny"]["ssim"] == w.ssim
    # y_channel=True scores luma only: the RGB score of the same restoration differs.
    rgb = evaluate(Smoother(), sets, device="cpu").sets["derain/tiny"]
    assert rgb.ssim != w.ssim and rgb.psnr != w.psnr


def test_input_row_is_exactly_what_an_identity_restorer_scores() -> None:
    identity = evaluate(nn.Identity(), Recipe(), device="cpu")
    smooth = evaluate(Smoother(), Recipe(), device="cpu")
    for label, s in identity.sets.items():
        assert (s.psnr, s.ssim) == (s.input_psnr, s.input_ssim)
        assert s.gain == 0.0
        assert all((i.psnr, i.ssim) == (i.input_psnr, i.input_ssim) for i in s.images)
        # The reference does not depend on the restorer: same images, same inputs.
        assert smooth.sets[label].input_psnr == s.input_psnr
    denoise = smooth.sets["denoise_25/tiny"]
    assert denoise.gain == denoise.psnr - denoise.input_psnr > 3
    assert smooth.summary()["denoise_25/tiny"]["input_psnr"] == denoise.input_psnr


class Nudge(nn.Module):
    """Adds a constant: each image's PSNR moves off its input's by an amount set by ``delta``."""

    def __init__(self, delta: float) -> None:
        super().__init__()
        self.delta = delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.delta


def test_a_restorer_that_returns_its_input_did_not_learn_and_one_that_restores_did() -> None:
    from lotteryir.engine import sets_not_learned

    same = evaluate(nn.Identity(), Recipe(), device="cpu")
    assert all(s.did_not_learn for s in same.sets.values())
    assert sets_not_learned(same) == ["denoise_25/tiny", "derain/tiny"]
    # The verdict travels with every form a closure or a report holds it in.
    summary = same.summary()
    assert summary["derain/tiny"]["did_not_learn"] is True
    assert sets_not_learned(summary) == sets_not_learned({"eval": summary}) == ["denoise_25/tiny", "derain/tiny"]
    assert sets_not_learned(json.loads(json.dumps(same.to_dict()))) == ["denoise_25/tiny", "derain/tiny"]

    smooth = evaluate(Smoother(), Recipe(), device="cpu")
    assert sets_not_learned(smooth) == [] and smooth.summary()["derain/tiny"]["did_not_learn"] is False


def test_did_not_learn_needs_every_image_within_a_hundredth_of_a_db() -> None:
    from lotteryir.engine.evaluate import ImageScore, SetScore

    def scored(*deltas: float) -> SetScore:
        images = [ImageScore(f"i{k}", 30.0 + d, 0.9, input_psnr=30.0, input_ssim=0.9) for k, d in enumerate(deltas)]
        return SetScore("web/x", "web", "x", 30.0, 0.9, images, input_psnr=30.0, input_ssim=0.9)

    assert scored(0.0, 0.009, -0.009).did_not_learn
    # One image that moved is enough to have learned, even when the set's mean did not move.
    assert not scored(0.0, 0.02, -0.02).did_not_learn
    assert not scored(0.5).did_not_learn
    # No input scores or no images: nothing to say.
    assert not SetScore("web/x", "web", "x", 30.0, 0.9, [ImageScore("i", 30.0, 0.9)]).did_not_learn
    assert not SetScore("web/x", "web", "x", 30.0, 0.9, []).did_not_learn
    # A real restorer, nudged: a tiny shift stays "did not learn", a visible one does not.
    assert evaluate(Nudge(1e-6), Recipe(), device="cpu").sets["derain/tiny"].did_not_learn
    assert not evaluate(Nudge(0.01), Recipe(), device="cpu").sets["derain/tiny"].did_not_learn
    # The command line prints the same tolerance it cannot import (it starts without torch).
    from lotteryir.cli.render import UNCHANGED
    from lotteryir.engine.evaluate import UNCHANGED_DB

    assert UNCHANGED == f"{UNCHANGED_DB:g} dB"


def test_a_custom_closure_that_returns_the_summary_gets_the_verdict_in_its_round_records() -> None:
    from lotteryir import IterativeMagnitudePruner
    from lotteryir.engine import sets_not_learned

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            nn.init.zeros_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv(x)

    def train(model: nn.Module, ctx) -> dict:  # a closure that never steps: the network stays the identity
        return {"eval": evaluate(model, Recipe(), device="cpu").summary()}

    pruner = IterativeMagnitudePruner(Net(), train, rate=0.2, rounds=1)
    for record in pruner.iter_rounds():
        assert sets_not_learned(record.metrics) == ["denoise_25/tiny", "derain/tiny"]
