"""Task names: one per degradation, and one per noise level so evaluation reports each sigma."""

from __future__ import annotations

from .errors import DataError

DENOISE_SIGMAS: tuple[int, ...] = (15, 25, 50)
DENOISE_TASKS: tuple[str, ...] = tuple(f"denoise_{s}" for s in DENOISE_SIGMAS)
"""The Gaussian-denoising task names, one per noise level (``denoise_15`` ...)."""
ALL_TASKS: tuple[str, ...] = (*DENOISE_TASKS, "derain", "dehaze", "web")
"""Every task name a recipe may offer: the denoising levels, ``derain``, ``dehaze`` and ``web``."""
FAMILIES: tuple[str, ...] = ("denoise", "derain", "dehaze", "web")
SHORT_NAMES: dict[str, str] = {
    "denoise_15": "σ15",
    "denoise_25": "σ25",
    "denoise_50": "σ50",
    "derain": "rain",
    "dehaze": "haze",
    "web": "web",
}
"""Each task's column heading in tables (the CLI's round table, the benchmarks')."""
# A training-only pseudo-task: pairs whose input is the clean image itself. Mixed into all-in-one
# training, they teach a blind restorer to leave an image alone when nothing is wrong with it.
IDENTITY = "identity"


def task_family(task: str) -> str:
    """The degradation family of a task: 'denoise_25' -> 'denoise', 'derain' -> 'derain'."""
    if task.startswith("denoise_"):
        noise_sigma(task)
        return "denoise"
    if (task in FAMILIES and task != "denoise") or task == IDENTITY:
        return task
    raise DataError(f"unknown task {task!r}; expected one of {', '.join(ALL_TASKS)} (or denoise_<sigma>)")


def noise_sigma(task: str) -> float:
    """The noise level (0-255 scale) of a denoise_<sigma> task."""
    _, _, value = task.partition("_")
    try:
        sigma = float(value)
    except ValueError:
        raise DataError(f"task {task!r} names no noise level; expected denoise_<sigma>, e.g. denoise_25") from None
    if not sigma > 0:
        raise DataError(f"task {task!r}: the noise level must be positive")
    return sigma


def check_tasks(tasks: list[str] | tuple[str, ...], available: list[str] | tuple[str, ...]) -> list[str]:
    """Validate a task selection against what a recipe offers; return it as a list."""
    unknown = [t for t in tasks if t not in available]
    if unknown:
        raise DataError(f"task(s) {', '.join(unknown)} not offered here; available: {', '.join(available)}")
    if not tasks:
        raise DataError("no tasks selected")
    return list(tasks)
