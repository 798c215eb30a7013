"""Every recipe option (``--data-path KEY=VALUE``), the noise protocols and the image channels, without torch.

``lotteryir recipes --help`` and ``prune --help`` show these; they must answer without importing torch, so
the names and their one-line descriptions live here, and the recipes (recipes.py, folders.py) check against them.
"""

from __future__ import annotations

from .errors import DataError

CHANNELS: tuple[int, ...] = (1, 3)
"""The image channels lotteryir reads: 1 (grayscale) or 3 (RGB); a network's input channels choose which."""

NOISE_PROTOCOLS: dict[str, str] = {
    "uint8": "noise added to the 8-bit image, clipped to [0, 255] and truncated to 8 bits (PromptIR, MIR-L)",
    "float": "float noise added to the [0, 1] image, neither clipped nor quantised (DnCNN, FFDNet, KAIR, Restormer)",
}
"""How Gaussian noise is synthesized (the ``noise`` recipe option): name -> what it does and who does it."""
DEFAULT_NOISE = "uint8"

WEB_DEGRADATIONS: dict[str, str] = {
    "jpeg": "JPEG at a quality drawn from 10-40, the range of the JPEG artefact-removal tables (LIVE1, Classic5)",
    "resize-jpeg": "downscaled by 0.5-1, JPEG at quality 20-70, scaled back up (bicubic): "
    "the earlier web default, which also asks for up to 2x super-resolution",
}
"""How the web task's inputs are synthesized (the ``web`` recipe option): name -> what it does."""
DEFAULT_WEB = "jpeg"
EARLIER_WEB = "resize-jpeg"  # what runs saved before the option existed used: their resumes keep it

FAMILIES: tuple[str, ...] = ("denoise", "derain", "dehaze", "web")

SAMPLE_OPTIONS: dict[str, str] = {
    "max_images": "use only the first N training and N test photographs",
    "repeat": "times each training photograph appears per task and epoch (default 8)",
    "split": "test (the 5 held-out photographs) or validation (3 training photographs held out instead)",
    "identity": "identity pairs (input = clean patch) per training photograph and epoch",
    "degradations": "independently seeded degradations per test photograph (a steadier mean)",
    "test_max_side": "long side of the test photographs in pixels (default 256, at least 16)",
    "noise": "noise protocol: " + " | ".join(NOISE_PROTOCOLS) + f" (default {DEFAULT_NOISE})",
    "web": "web degradation: " + " | ".join(WEB_DEGRADATIONS) + f" (default {DEFAULT_WEB})",
}
"""The sample recipe's options."""

FOLDER_KEYS: dict[str, str] = {
    **{f"{f}_train": f"{f} training folder(s), relative to --data or absolute (repeatable)" for f in FAMILIES},
    **{f"{f}_test": f"{f} test folder(s), each a test set named after its folder (repeatable)" for f in FAMILIES},
}
FOLDER_OPTIONS: dict[str, str] = {
    **FOLDER_KEYS,
    "layout": "how inputs pair with targets: auto, same-name, mirl, promptir or reside",
    "size_mismatch": "error, or crop (centre-crop a pair to its common size, as some RESIDE downloads need)",
    "cache": "true/false: decode every image once and keep it in memory (default: when the files total <= 256 MB)",
    "skip_bad": "true/false: skip unreadable images with a warning instead of stopping",
    "noise": "noise protocol: " + " | ".join(NOISE_PROTOCOLS) + f" (default {DEFAULT_NOISE})",
    "web": "web degradation of clean web images: " + " | ".join(WEB_DEGRADATIONS) + f" (default {DEFAULT_WEB})",
}
"""The folder recipes' options (mirl, denoise, derain, dehaze, web)."""


def check_noise(value: object) -> str:
    """A noise protocol's name, checked (DataError naming the choices)."""
    text = str(value).strip().lower()
    if text not in NOISE_PROTOCOLS:
        raise DataError(f"noise={value!r} is not a noise protocol; choose {' or '.join(NOISE_PROTOCOLS)}")
    return text


def check_web(value: object) -> str:
    """A web degradation's name, checked (DataError naming the choices)."""
    text = str(value).strip().lower()
    if text not in WEB_DEGRADATIONS:
        raise DataError(f"web={value!r} is not a web degradation; choose {' or '.join(WEB_DEGRADATIONS)}")
    return text


def options_help() -> str:
    """Every recipe option with its meaning, as ``lotteryir recipes --help`` lists them."""
    lines = ["Options (--data-path KEY=VALUE, repeatable) of the sample recipe:"]
    lines += [f"  {key}: {text}" for key, text in SAMPLE_OPTIONS.items()]
    lines += ["Options of the folder recipes (mirl, denoise, derain, dehaze, web):"]
    lines += [f"  {key}: {text}" for key, text in FOLDER_OPTIONS.items()]
    lines += ["  A folder key given as KEY= (empty) leaves that part out; without --data only the folders given count."]
    lines += ["Noise protocols (noise=, or --noise on prune and evaluate):"]
    lines += [f"  {name}: {text}" for name, text in NOISE_PROTOCOLS.items()]
    lines += ["Web degradations (web=):"]
    lines += [f"  {name}: {text}" for name, text in WEB_DEGRADATIONS.items()]
    return "\n".join(lines)
