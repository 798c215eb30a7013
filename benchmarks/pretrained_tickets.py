"""A published, trained restorer through lotteryir: its published figure, then its tickets at density 0.5 and 0.2.

Default: DnCNN-S for grayscale Gaussian denoising at sigma 25 (Zhang et al., TIP 2017), the paper's own
weights, on Set12 and BSD68, under the float noise protocol of the paper's tables. Nothing third-party
is in the repository: the benchmark takes the paths of the weights, the training folder (Train400) and
the test folders, and records their SHA-256 and where they came from (docs/pretrained.md says where to
get them). Every unit is a `lotteryir prune --from WEIGHTS` run (a `PruningRun` with ``from_weights``):

- dense: the given weights on every test set, beside the published figure and the noisy input; and
  under the uint8 noise protocol (PromptIR's: clipped and truncated to 8 bits), to show what it moves;
- validation: magnitude pruning without retraining (`--steps 0 --bn-recalibrate`), global against
  layerwise scope, scored on images held out of the training folder; the scope every later unit
  uses is chosen there, never on a test image;
- magnitude, magnitude+bn: pruned to each density without retraining, without and with BatchNorm
  recalibration; oneshot-ft: pruned at once, then fine-tuned from the trained weights (`--rewind
  none`); lr-rewind: two rounds of learning-rate rewinding; imp-from: two rounds of IMP rewinding to
  the given weights (`--rewind from`). Each is scored on the first test set; the tickets named by
  --final (chosen before the run) also on every test set, through `lotteryir evaluate`.

    python benchmarks/pretrained_tickets.py --weights W --train DIR --test Set12=DIR --test BSD68=DIR
    python benchmarks/pretrained_tickets.py ... --dry-run     # the plan and its estimate, nothing trained
    python benchmarks/pretrained_tickets.py --smoke --out /tmp/pt.json   # seconds: a tiny net, made-up images
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from harness import ROOT, Benchmark, Refused, Unit, main, relative
from reports import pretrained_tickets as view

from lotteryir.models import register_import_path
from lotteryir.models.external import file_sha256
from lotteryir.runs import PruningRun, RunConfig, build_run, with_cost

MODEL = f"{ROOT / 'benchmarks' / 'real' / 'dncnn.py'}:dncnn_paper_bn"
SOURCE = "cszn/DnCNN@e93b2781 utilities/sigma=25_Bnorm.mat, converted by benchmarks/real/convert_dncnn_mat.py"
PUBLISHED = "Set12=30.44,BSD68=29.23"  # DnCNN-S at sigma 25, the paper's tables
DENSITIES = ("0.5", "0.2")
SCOPES = ("global", "layerwise")
ROUTES = ("magnitude", "magnitude+bn", "oneshot-ft", "lr-rewind", "imp-from")
TRAININGS = {"magnitude": 0, "magnitude+bn": 0, "oneshot-ft": 1, "lr-rewind": 2, "imp-from": 2}


def run_unit(directory: str, settings: dict[str, Any], model: str) -> dict[str, Any]:
    """A unit: one `lotteryir prune --from` run to its end; each round's scores, density and cost so far."""
    register_import_path(model)  # a name the person typed; every worker process registers it again
    history = with_cost(PruningRun(directory, RunConfig(**settings)).run())
    rounds = [
        {
            "round": h["round"],
            "density": h["density"],
            "psnr": {k: v["psnr"] for k, v in h["eval"].items()},
            "input_psnr": {k: v["input_psnr"] for k, v in h["eval"].items()},
            "steps": h["cost_total"]["steps"],
            "train_seconds": h["cost_total"]["train_seconds"],
        }
        for h in history
    ]
    return {"rounds": rounds, "source": relative(Path(directory))}


def evaluate_unit(directory: str, round: int, tests: dict[str, str], model: str, threads: int) -> dict[str, Any]:
    """A unit: ``lotteryir evaluate RUN --round R --json`` on every test set, in process (what a user runs)."""
    from lotteryir.cli import main as cli

    args = ["evaluate", directory, "--round", str(round), "--json", "--model", model, "--noise", "float"]
    args += [x for path in tests.values() for x in ("--data-path", f"denoise_test={path}")]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli([*args, "--threads", str(threads), "--device", "cpu"])
    if status != 0:
        raise RuntimeError(f"lotteryir evaluate exited with {status}")
    sets = json.loads(out.getvalue())["sets"]
    return {"sets": {label: {k: s[k] for k in ("psnr", "ssim", "input_psnr")} for label, s in sets.items()}}


class PretrainedTickets(Benchmark):
    name = "pretrained_tickets"
    seeds = 1
    view = view
    notes = "evaluations count whole test sets, in units of the first one's pixels"

    def options(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=MODEL, help="the network, path/to/file.py:factory (benchmarks/real's DnCNN)")
        p.add_argument("--weights", type=Path, help="the trained weights (any file `lotteryir evaluate` reads)")
        p.add_argument("--source", default=SOURCE, help="where the weights come from (recorded)")
        p.add_argument("--train", type=Path, help="the training folder (clean images; Train400)")
        p.add_argument("--test", action="append", default=[], help="NAME=FOLDER of clean test images, repeatable")
        p.add_argument("--published", default=PUBLISHED, help=f"NAME=dB of the published figures ({PUBLISHED})")
        p.add_argument("--sigma", type=int, default=25, choices=(15, 25, 50))
        p.add_argument("--steps", type=int, default=500, help="optimizer steps per fine-tuning (default 500)")
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--patch", type=int, default=40)
        p.add_argument("--lrs", default="1e-4,3e-5,1e-5", help="learning rates to choose from on the held-out images")
        p.add_argument("--loss", default="mse")
        p.add_argument("--recalibrate", type=int, default=10, help="BatchNorm batches of magnitude+bn (10)")
        p.add_argument("--validation", type=int, default=32, help="training images held out to choose the scope")
        p.add_argument("--routes", default=",".join(ROUTES), help=f"comma-separated ({','.join(ROUTES)})")
        p.add_argument("--final", default="oneshot-ft/0.5,imp-from/0.2", help="tickets scored on every test set")

    def presets(self, a: argparse.Namespace, p: argparse.ArgumentParser) -> None:
        a.routes = [r for r in a.routes.split(",") if r]
        if unknown := [r for r in a.routes if r not in ROUTES]:
            p.error(f"--routes: unknown {unknown}; choose from {', '.join(ROUTES)}")
        a.final = [tuple(f.split("/")) for f in a.final.split(",") if f]
        if bad := [f for f in a.final if len(f) != 2 or f[0] not in a.routes or f[1] not in DENSITIES]:
            p.error(f"--final: {bad} are not ROUTE/DENSITY of this run")
        if a.smoke:
            view.smoke_material(a)  # a tiny DnCNN and made-up gray images under --work
        try:
            a.lrs = [float(x) for x in a.lrs.split(",") if x.strip()]
        except ValueError:
            p.error(f"--lrs takes comma-separated learning rates, got {a.lrs!r}")
        if a.weights is None or a.train is None or not a.test:
            p.error("give --weights, --train and --test NAME=FOLDER (or --smoke)")
        a.tests = dict(_pair(p, "--test", t) for t in a.test)
        a.published = {k: float(v) for k, v in (_pair(p, "--published", t) for t in a.published.split(",") if t)}
        a.model = register_import_path(a.model)

    def probe(self, a: argparse.Namespace) -> Any:
        for path in (a.weights, a.train, *map(Path, a.tests.values())):
            if not Path(path).exists():
                raise Refused(f"{path} does not exist")
        self.material = {
            "weights": {"path": relative(a.weights), "sha256": file_sha256(a.weights), "source": a.source},
            "train": view.folder_record(a.train),
            "test": {label: view.folder_record(Path(d)) for label, d in a.tests.items()},
        }
        self.split = view.split_training(a.train, a.work / "split", a.validation)
        first = dict([next(iter(a.tests.items()))])
        return build_run(self.settings(a, "dense", "1", first).resolved())

    def config(self, a: argparse.Namespace, probe: Any) -> dict[str, Any]:
        keys = ("sigma", "steps", "batch", "patch", "lrs", "loss", "recalibrate", "published", "validation")
        path, _, factory = a.model.rpartition(":")
        return {
            "model": f"{relative(Path(path))}:{factory}",
            **{k: getattr(a, k) for k in keys},
            "material": self.material,
        }

    def settings(
        self, a: argparse.Namespace, route: str, d: str, tests: dict[str, str], scope: str = "global", lr: float = 0
    ) -> Any:
        """The `lotteryir prune --from` configuration of one unit (``lr`` 0: the first candidate; nothing trains)."""
        noise = "uint8" if route == "dense-uint8" else "float"
        data = {"denoise_train": [str(self.split["train"])], "denoise_test": tests, "noise": noise}
        c: dict[str, Any] = {"model": a.model, "recipe": "denoise", "data_paths": data, "tasks": [f"denoise_{a.sigma}"]}
        c.update(batch_size=a.batch, patch_size=a.patch, lr=lr or a.lrs[0], loss=a.loss, seed=a.seed0, scope=scope)
        c.update(from_weights=str(a.weights), device=a.device, threads=a.threads, steps=a.steps, rounds=0)
        density = float(d)
        if route.startswith("magnitude"):
            c.update(method="oneshot", target_density=density, rounds=None, steps=0)
            c.update(bn_recalibrate=a.recalibrate if route == "magnitude+bn" else 0)
        elif route == "oneshot-ft":
            c.update(method="oneshot", target_density=density, rounds=None, rewind="none")
        elif route in ("lr-rewind", "imp-from"):  # two rounds that land exactly on the density
            c.update(method="imp" if route == "imp-from" else route, rate=1 - density**0.5, rounds=2)
            c.update(rewind="from" if route == "imp-from" else None)
        return RunConfig(**c)

    def units(self, a: argparse.Namespace, report: dict[str, Any]) -> list[Unit]:
        done, out = report["results"], []
        sizes = {label: r["pixels"] for label, r in self.material["test"].items()}
        evals = sum(sizes.values()) / next(iter(sizes.values()))  # every set, in units of the first
        for dense in ("dense", "dense-uint8"):  # the published protocol, and PromptIR's (clipped, 8-bit) beside it
            if dense not in done:
                out.append(Unit((dense,), "dense", evals=evals, call=self.call(a, (dense,), dense, "1", a.tests)))
        validation = {"validation": str(self.split["val"])}
        for scope in SCOPES:
            for d in DENSITIES:
                key = ("validation", scope, d)
                if not view.has(done, key):
                    out.append(Unit(key, "validation", evals=2, call=self.call(a, key, "magnitude+bn", d, validation,
                                                                               scope)))  # fmt: skip
        scoped = tuple(("validation", s, d) for s in SCOPES for d in DENSITIES)
        for lr in a.lrs:  # fine-tuning at 0.5 in the chosen scope, scored on the held-out images
            key = ("validation-lr", f"{lr:g}")
            if not view.has(done, key):
                out.append(Unit(key, "validation", steps=a.steps, evals=2, after=scoped,
                                start=self.later(a, report, "oneshot-ft", "0.5", key, validation, lr)))  # fmt: skip
        chooses = scoped + tuple(("validation-lr", f"{lr:g}") for lr in a.lrs)
        for route in a.routes:
            for d in DENSITIES:
                key, n = (route, d), TRAININGS[route]
                if not view.has(done, key):
                    out.append(Unit(key, route, steps=n * a.steps, evals=1 + max(n, 1), after=chooses,
                                    start=self.later(a, report, route, d, key)))  # fmt: skip
                if (route, d) in a.final and not view.has(done, ("final", route, d)):
                    out.append(Unit(("final", route, d), "final", evals=evals, after=(key,),
                                    start=self.final(a, report, route, d)))  # fmt: skip
        return out

    def call(self, a: argparse.Namespace, key: tuple[str, ...], route: str, d: str, tests: dict[str, str],
             scope: str = "global", lr: float = 0) -> tuple[Any, ...]:  # fmt: skip
        config = dataclasses.asdict(self.settings(a, route, d, tests, scope, lr))
        return (run_unit, str(a.work / "/".join(key)), config, a.model)

    def later(self, a: argparse.Namespace, report: dict[str, Any], route: str, d: str, key: tuple[str, ...],
              tests: dict[str, str] | None = None, lr: float = 0) -> Any:  # fmt: skip
        """A unit's call once the held-out images chose the scope (and, for the tickets, the learning rate)."""
        tests = tests or dict([next(iter(a.tests.items()))])
        return lambda: self.call(a, key, route, d, tests, view.chosen_scope(report), lr or view.chosen_lr(report))

    def final(self, a: argparse.Namespace, report: dict[str, Any], route: str, d: str) -> Any:
        """A finished ticket scored on every test set."""

        def start() -> tuple[Any, ...]:
            cell = report["results"][route][d]
            return (evaluate_unit, str(ROOT / cell["source"]), cell["rounds"][-1]["round"], a.tests, a.model, 1)

        return start

    def describe(self, a: argparse.Namespace, probe: Any) -> str:
        lrs = ", ".join(f"{x:g}" for x in a.lrs)
        return (
            f"pretrained tickets: {a.model.rpartition(':')[2]} from {relative(a.weights)}, sigma {a.sigma}, "
            f"float noise, test sets {', '.join(a.tests)}; fine-tuning {a.steps} steps, batch {a.batch}, "
            f"patch {a.patch}, lr chosen from {lrs}, {a.loss}; routes {', '.join(a.routes)} at {', '.join(DENSITIES)}"
        )

    def say(self, unit: Unit, result: dict[str, Any]) -> str:
        sets = result["rounds"][-1]["psnr"] if "rounds" in result else {k: v["psnr"] for k, v in result["sets"].items()}
        return ", ".join(f"{k} {v:.2f} dB" for k, v in sets.items())

    def summarize(self, report: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
        return view.summarize(report)


def _pair(p: argparse.ArgumentParser, flag: str, text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        p.error(f"{flag} takes NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


if __name__ == "__main__":
    raise SystemExit(main(PretrainedTickets()))
