"""Training closure, metrics, padded and tiled inference, and evaluation for restorers."""

from __future__ import annotations

from lotteryir.engine.config import TrainConfig
from lotteryir.engine.device import pick_device
from lotteryir.engine.evaluate import EvalResult, ImageScore, SetScore, evaluate, sets_not_learned
from lotteryir.engine.inference import restore_image
from lotteryir.engine.metrics import psnr, rgb_to_y, ssim
from lotteryir.engine.train import NonFiniteLossError, RestorationTrainer, TrainingStopped, TrainProgress

__all__ = [
    "psnr",
    "ssim",
    "rgb_to_y",
    "restore_image",
    "pick_device",
    "evaluate",
    "sets_not_learned",
    "EvalResult",
    "SetScore",
    "ImageScore",
    "TrainConfig",
    "TrainProgress",
    "RestorationTrainer",
    "NonFiniteLossError",
    "TrainingStopped",
]
