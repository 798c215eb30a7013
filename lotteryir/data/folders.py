"""Recipes over folders on disk: MIR-L's all-in-one tree and the single-task recipes.

Folders sit under ``root`` by MIR-L's names; each ``<family>_train`` / ``<family>_test`` keyword
overrides them (a path, a list of paths, for tests a dict name -> path, or None to leave them out).
Each test folder is a test set labelled by its folder name (``denoise_test=[".../BSD68", ".../Set12"]``).
A folder holding input/target (or rainy/gt, hazy/clear, ...) is paired; a folder of plain images
is clean and gets the task's synthetic degradation. Without a root the default folders are not used:
only the folders given count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .base import Recipe
from .datasets import ImageDataset
from .errors import DataError
from .io import check_channels
from .layouts import find_pair_folders, list_images, pair_images
from .mixing import MIRL_REPEATS
from .options import DEFAULT_NOISE, DEFAULT_WEB, FAMILIES, check_noise, check_web
from .source import ImageSource
from .tasks import DENOISE_TASKS, check_tasks, task_family

PathLike = str | Path


@dataclass(frozen=True)
class FolderSpec:
    """A folder recipe's defaults: its task families, folders under root, repeats and layout text."""

    name: str
    description: str
    families: tuple[str, ...]
    train: dict[str, list[str]]  # family -> folders under root
    test: dict[str, dict[str, str]]  # family -> dataset name -> folder under root
    repeats: dict[str, int]
    layout_text: str


class FolderRecipe(Recipe):
    """A recipe over folders on disk: clean folders are degraded on the fly, paired folders are read."""

    def __init__(
        self,
        spec: FolderSpec,
        root: PathLike | None,
        *,
        layout: str = "auto",
        cache: bool | None = None,
        skip_bad: bool = False,
        size_mismatch: str = "error",
        channels: int = 3,
        noise: str = DEFAULT_NOISE,
        web: str = DEFAULT_WEB,
        **paths: Any,
    ) -> None:
        self.name, self.description, self._spec = spec.name, spec.description, spec
        self.root = Path(root).expanduser() if root is not None else None
        self.layout, self.cache, self.skip_bad, self.size_mismatch = layout, cache, skip_bad, size_mismatch
        self.channels, self.noise, self.web = check_channels(channels), check_noise(noise), check_web(web)
        self._unrooted: dict[str, list[str]] = {}  # option -> default folders, unusable without a root
        if self.root is not None and not self.root.is_dir():
            raise DataError(
                f"data root {self.root} {'is not a folder' if self.root.exists() else 'not found'}; "
                f"the {self.name} recipe expects:\n{self.describe()}"
            )
        self._train, self._test = self._resolve(paths)
        unrooted = {key.rpartition("_")[0] for key in self._unrooted}
        families = [f for f in FAMILIES if f in self._train or f in self._test or f in unrooted]
        self.tasks = expand_families(families)
        self.default_repeats = {t: r for t, r in spec.repeats.items() if t in self.tasks}
        # Missing folders are not an error here: check() lists every one of them precisely.

    def _resolve(self, paths: dict[str, Any]) -> tuple[dict[str, list[Path]], dict[str, dict[str, Path]]]:
        allowed = {f"{f}_{kind}" for f in FAMILIES for kind in ("train", "test")}
        unknown = sorted(set(paths) - allowed)
        if unknown:
            raise DataError(
                f"unknown option(s) for the {self.name} recipe: {', '.join(unknown)}; "
                f"paths are given as {', '.join(sorted(allowed))}"
            )
        train: dict[str, list[Path]] = {}
        test: dict[str, dict[str, Path]] = {}
        for family in FAMILIES:
            key = f"{family}_train"
            given = paths[key] if key in paths else self._default(key, self._spec.train.get(family))
            if given:
                train[family] = [self._path(p) for p in ([given] if isinstance(given, (str, Path)) else given)]
            key = f"{family}_test"
            given = paths[key] if key in paths else self._default(key, self._spec.test.get(family))
            if given:
                labelled = given if isinstance(given, dict) else _labelled(key, given)
                test[family] = {label: self._path(p) for label, p in labelled.items()}
        return train, test

    def _default(self, key: str, folders: Any) -> Any:
        """A default folder option, or None when there is no root to find it under (check() says so)."""
        if folders and self.root is None:
            self._unrooted[key] = list(folders.values() if isinstance(folders, dict) else folders)
            return None
        return folders

    def _path(self, path: PathLike) -> Path:
        path = Path(path).expanduser()
        if path.is_absolute():
            return path
        if self.root is None:
            raise DataError(
                f"the {self.name} recipe needs a data root for the relative path {path} "
                f"(give root=..., or absolute paths); expected layout:\n{self.describe()}"
            )
        return self.root / path

    def _folders(self, tasks: list[str] | None, train: bool) -> dict[str, list[Path]]:
        """The folders each option names for ``tasks`` (test folders only with ``train=False``)."""
        families = {task_family(t) for t in check_tasks(tasks if tasks is not None else self.tasks, self.tasks)}
        out: dict[str, list[Path]] = {}
        for family in FAMILIES:
            if family not in families:
                continue
            if train and family in self._train:
                out[f"{family}_train"] = self._train[family]
            if family in self._test:
                out[f"{family}_test"] = list(self._test[family].values())
        return out

    def _source(self, folders: list[Path], cache: dict[Any, ImageSource]) -> ImageSource:
        key = tuple(folders)
        if key not in cache:
            options = {
                "cache": self.cache,
                "skip_bad": self.skip_bad,
                "size_mismatch": self.size_mismatch,
                "channels": self.channels,
            }
            pairs = [pf for pf in map(find_pair_folders, folders) if pf is not None]
            if pairs and len(pairs) != len(folders):
                raise DataError(f"mixing paired and clean folders in one set: {', '.join(map(str, folders))}")
            if pairs:
                matched = [p for i, t in pairs for p in pair_images(i, t, layout=self.layout)]
                cache[key] = ImageSource.from_pairs(matched, **options)
            else:
                found = [p for f in folders for p in list_images(f, what="clean images")]
                cache[key] = ImageSource.from_paths(found, **options)
        return cache[key]

    def _train_source(self, task: str, cache: dict[Any, ImageSource]) -> ImageSource:
        family = task_family(task)
        if family not in self._train:
            raise DataError(
                f"the {self.name} recipe has no training folder for {task}: give --data ROOT or "
                f"--data-path {family}_train=FOLDER, or leave {family} out of --tasks"
            )
        return self._source(self._train[family], cache)

    def test_sets(self, tasks: list[str] | None = None) -> dict[str, Dataset]:
        selected = check_tasks(tasks if tasks is not None else self.tasks, self.tasks)
        cache: dict[Any, ImageSource] = {}
        sets: dict[str, Dataset] = {}
        for task in selected:
            for label, folder in self._test.get(task_family(task), {}).items():
                source = self._source([folder], cache)
                sets[f"{task}/{label}"] = ImageDataset(source, task, degrade_options=self.degrade_options(task))
        return sets

    def check(self, tasks: list[str] | None = None, *, train: bool = True) -> list[str]:
        problems: list[str] = []
        wanted = {key for key in self._keys(tasks) if train or key.endswith("_test")}
        unrooted = {key: defaults for key, defaults in self._unrooted.items() if key in wanted}
        if unrooted and not self._train and not self._test:  # nothing given at all: one problem, not one per part
            return [
                f"the {self.name} recipe's folders lie under a data root: give --data ROOT (layout: `lotteryir "
                "recipes`), or name each with --data-path KEY=FOLDER"
            ]
        for key, defaults in unrooted.items():
            leave_out = f", or {key}= to leave it out" if key.endswith("_test") else ""
            problems.append(
                f"{key}: its default ({', '.join(defaults)}) needs a data root: give --data ROOT or "
                f"--data-path {key}=FOLDER{leave_out}"
            )
        folders = [p for ps in self._folders(tasks, train).values() for p in ps]
        for folder in dict.fromkeys(folders):  # denoise sets may repeat; keep order
            problems += _check_folder(folder, self.layout)
        return problems

    def remedy(self, tasks: list[str] | None = None, *, train: bool = True) -> str:
        """For each option whose folders are missing: the --data-path that uses only those present, or leaves it out."""
        advice: list[str] = []
        named = self._folders(tasks, train)  # (a default without a root names its remedy in check())
        for key in [k for k in named if any(not p.exists() for p in named[k])]:
            present = [p for p in named.get(key, []) if p.exists()]
            family, _, kind = key.rpartition("_")
            if present:
                given = " ".join(f"--data-path {key}={p}" for p in present)
                advice.append(f"{given} uses only the {kind} folders you have")
            elif kind == "test":
                advice.append(f"--data-path {key}=FOLDER names your own (repeatable); {key}= leaves them out")
            else:
                advice.append(f"--data-path {key}=FOLDER names your own, or leave {family} out of --tasks")
        return "; ".join(advice)

    def _keys(self, tasks: list[str] | None) -> set[str]:
        families = {task_family(t) for t in check_tasks(tasks if tasks is not None else self.tasks, self.tasks)}
        return {f"{f}_{kind}" for f in families for kind in ("train", "test")}

    def describe(self) -> str:
        root = str(self.root) if getattr(self, "root", None) is not None else "<root>"
        return self._spec.layout_text.replace("<root>", root)


def _labelled(key: str, folders: Any) -> dict[str, PathLike]:
    """Test folders labelled by their names; two folders of one name would be one set, so they are refused."""
    labelled: dict[str, PathLike] = {}
    for folder in [folders] if isinstance(folders, (str, Path)) else folders:
        label = Path(folder).name
        if label in labelled:
            raise DataError(
                f"{key}: {labelled[label]} and {folder} are both named {label!r}; each test folder is a set "
                "labelled by its name: rename one (or give a dict label -> folder from Python)"
            )
        labelled[label] = folder
    return labelled


def expand_families(families: tuple[str, ...] | list[str]) -> list[str]:
    """Task names of families: 'denoise' stands for one task per noise level."""
    return [t for f in families for t in (DENOISE_TASKS if f == "denoise" else (f,))]


def _check_folder(folder: Path, layout: str) -> list[str]:
    try:
        pair = find_pair_folders(folder) if folder.is_dir() else None
        if pair is not None:
            pair_images(*pair, layout=layout)
        else:
            list_images(folder)
    except DataError as exc:
        return [str(exc)]
    return []


_MIRL_LAYOUT = """<root>/
  train/denoise/WED/*.bmp, train/denoise/BSD400/*.jpg      clean images (noise added on the fly)
  train/derain/Rain100L/{input/x_rainy.png, target/x_gt.png}
  train/dehaze/OTS/{input/x_hazy.jpg, target/x_gt.jpg}
  test/denoise/BSD68/*, test/denoise/Urban100/*              clean images (noise seeded per image)
  test/derain/Rain100L/{input,target}/
  test/dehaze/SOTS/{input,target}/
Pairs are matched by name: x_rainy/x_gt and x_hazy/x_gt (MIR-L), rain-N/norain-N and rainy/gt
folders (PromptIR), 0001_0.8_0.2.jpg/0001.png (RESIDE), or the same name in input/ and target/."""

_MIRL = FolderSpec(
    name="mirl",
    description="MIR-L's all-in-one sets: BSD400+WED denoising (sigma 15/25/50), Rain100L, RESIDE OTS/SOTS",
    families=("denoise", "derain", "dehaze"),
    train={
        "denoise": ["train/denoise/WED", "train/denoise/BSD400"],
        "derain": ["train/derain/Rain100L"],
        "dehaze": ["train/dehaze/OTS"],
    },
    test={
        "denoise": {"BSD68": "test/denoise/BSD68", "Urban100": "test/denoise/Urban100"},
        "derain": {"Rain100L": "test/derain/Rain100L"},
        "dehaze": {"SOTS": "test/dehaze/SOTS"},
    },
    repeats=MIRL_REPEATS,
    layout_text=_MIRL_LAYOUT + "\nGive web_train=/web_test= folders to add the web (JPEG) task.",
)


def _single(family: str, description: str, train: list[str], test: dict[str, str], text: str) -> FolderSpec:
    repeats = {t: r for t, r in MIRL_REPEATS.items() if task_family(t) == family}
    return FolderSpec(family, description, (family,), {family: train}, {family: test}, repeats, text)


FOLDER_RECIPES: dict[str, FolderSpec] = {
    "mirl": _MIRL,
    "denoise": _single(
        "denoise",
        "Gaussian denoising at sigma 15, 25, 50 on clean image folders (BSD400+WED / BSD68, Urban100)",
        _MIRL.train["denoise"],
        _MIRL.test["denoise"],
        "<root>/\n  train/denoise/WED/, train/denoise/BSD400/   clean images\n"
        "  test/denoise/BSD68/, test/denoise/Urban100/   clean images\n"
        "Gaussian noise at sigma 15, 25, 50 is added on the fly (seeded per image for tests).",
    ),
    "derain": _single(
        "derain",
        "deraining on Rain100L-style pairs (or synthetic rain on clean images)",
        _MIRL.train["derain"],
        _MIRL.test["derain"],
        "<root>/\n  train/derain/Rain100L/{input,target}/   rainy/clean pairs\n"
        "  test/derain/Rain100L/{input,target}/\n"
        "A folder of clean images instead gets synthetic rain streaks.",
    ),
    "dehaze": _single(
        "dehaze",
        "dehazing on RESIDE OTS/SOTS-style pairs (or synthetic haze on clean images)",
        _MIRL.train["dehaze"],
        _MIRL.test["dehaze"],
        "<root>/\n  train/dehaze/OTS/{input,target}/   hazy/clean pairs (or hazy/clear, synthetic/original)\n"
        "  test/dehaze/SOTS/{input,target}/\n"
        "A folder of clean images instead gets synthetic haze.",
    ),
    "web": _single(
        "web",
        "JPEG degradation (web=jpeg or resize-jpeg), synthesized on clean images or read from pairs",
        ["train/web"],
        {"web": "test/web"},
        "<root>/\n  train/web/   clean images (JPEG applied on the fly, as web= names) or {input,target}/ pairs\n"
        "  test/web/    the same; synthetic degradations are seeded per image",
    ),
}
