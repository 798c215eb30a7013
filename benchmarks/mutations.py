"""Mutation check: break the core on purpose, one change at a time, and see the tests fail.

Each :class:`Mutation` replaces one piece of text (``old``, which occurs exactly once in its file) by a
plausible bug (``new``): the schedule, selection and strategies, rewind, masking, each method's defining
step, and the transfer of a ticket between runs. Every mutation is applied to a COPY of the package and
the tests in a temporary directory (the working tree is never edited) and runs only the few tests
listed with it (``PYTHONPATH`` and the working directory point at the copy, subprocesses included).
A mutation is killed when those tests fail; a survivor means the suite would not notice that bug.
First the union of the listed tests runs on the unmutated copy: it must pass, or nothing is measured.
Each mutation's pytest is a fresh process forked from this one, which imported torch and the other
third-party modules beforehand but never lotteryir (``--spawn``: a new interpreter each, slower).

    python benchmarks/mutations.py [--only NAME ...] [--list] [--spawn] [--out benchmarks/results/mutations.json]

Prints a table and writes JSON: the score (killed / total), per mutation the test that killed it and the
seconds its tests took, and how the file was made (command, commit, dirty flag, machine, torch, wall time).
A new method adds its mutation here; ``tests/benchmarks/test_mutations.py`` checks that every ``old``
still occurs exactly once, so a refactor cannot turn a mutation into a no-op.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import harness

from lotteryir._files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "mutations.json"
COPIED = ("lotteryir", "tests", "pyproject.toml")  # what a mutated copy needs to run the tests
TIMEOUT = 600  # seconds for one mutation's tests: a mutation that hangs them is killed (the suite would time out)
OWN = ("lotteryir", "tests", "conftest")  # the copy's own modules: never taken from this process
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "node_modules", ".pytest_cache")

# Tests, by node id, that each mutation's selection draws on.
METHODS = "tests/pruning/test_methods.py"
PRUNER = "tests/pruning/test_pruner.py"
STRATEGIES = "tests/pruning/test_strategies.py"
TRANSFER = "tests/analysis/test_runs_cli.py::test_the_transfer_trains_as_mask_from_as_rewind_point_as_b_trains"


@dataclass(frozen=True)
class Mutation:
    """One plausible bug: ``old`` (exactly once in ``file``) becomes ``new``; ``tests`` must then fail."""

    name: str
    area: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


MUTATIONS: tuple[Mutation, ...] = (
    # -- the schedule ------------------------------------------------------------------------------
    Mutation(
        "schedule-linear",
        "schedule",
        "lotteryir/pruning/schedule.py",
        "return int(round(n * (1.0 - r) ** level))",
        "return int(round(n * (1.0 - r * level)))",
        (f"{PRUNER}::test_exact_density_after_k_rounds",),
        "level k keeps n (1 - k rate) instead of n (1 - rate)^k",
    ),
    Mutation(
        "schedule-rounds-for-density",
        "schedule",
        "lotteryir/pruning/schedule.py",
        "goal = target_density * 1.005",
        "goal = target_density",
        (f"{PRUNER}::test_target_density_sets_rounds",),
        "a quoted density (0.107 for 0.8^10) needs one round more than the schedule reaches it",
    ),
    # -- selection and strategies --------------------------------------------------------------------
    Mutation(
        "selection-no-linear",
        "selection",
        "lotteryir/pruning/selection.py",
        "    nn.Linear,\n)",
        ")",
        (f"{PRUNER}::test_default_selection_and_tied_and_unused",),
        "Linear weights are not prunable by default",
    ),
    Mutation(
        "selection-tied-split",
        "selection",
        "lotteryir/pruning/selection.py",
        "if id(p) in seen:",
        "if False:",
        (f"{PRUNER}::test_default_selection_and_tied_and_unused",),
        "a tied weight gets one mask per name instead of one shared mask",
    ),
    Mutation(
        "selection-exclude-ignored",
        "selection",
        "lotteryir/pruning/selection.py",
        "hit_exclude[pat] = True\n                    wanted = False",
        "hit_exclude[pat] = True",
        (f"{PRUNER}::test_bad_patterns_and_masks", f"{PRUNER}::test_default_selection_and_tied_and_unused"),
        "an exclude glob is matched but does not exclude",
    ),
    Mutation(
        "strategy-signed-keys",
        "strategies",
        "lotteryir/pruning/strategies.py",
        "return w.detach().to(torch.float32).contiguous().view(torch.int32) & 0x7FFFFFFF",
        "return w.detach().to(torch.float32).contiguous().view(torch.int32)",
        (f"{STRATEGIES}::test_global_threshold_is_global", f"{STRATEGIES}::test_matches_torch_global_unstructured"),
        "global magnitude ranks by signed value: negative weights go first",
    ),
    Mutation(
        "strategy-signed-keys-zeros-pruned",
        "strategies",
        "lotteryir/pruning/strategies.py",
        "torch.bitwise_and(bits, 0x7FFFFFFF, out=flat[at : at + bits.numel()])",
        "flat[at : at + bits.numel()].copy_(bits)",
        ("tests/pruning/test_bridge.py::test_zero_pruned_fast_path_agrees_with_the_general_path",),
        "the fast path (pruned entries are zeros) ranks by signed value",
    ),
    Mutation(
        "strategy-ties-last-first",
        "strategies",
        "lotteryir/pruning/strategies.py",
        "keep[ties[ties_to_remove:]] = True",
        "keep[ties[: ties.numel() - ties_to_remove]] = True",
        (f"{STRATEGIES}::test_ties_broken_by_position",),
        "equal magnitudes: the last ones are removed instead of the first",
    ),
    Mutation(
        "strategy-scope-ignored",
        "strategies",
        "lotteryir/pruning/masking.py",
        "out.update(STRATEGIES[scope](weights, rest,",
        'out.update(STRATEGIES["global"](weights, rest,',
        (f"{PRUNER}::test_random_scope_prunes_regardless_of_magnitude",),
        "scope random prunes by global magnitude",
    ),
    # -- rewind --------------------------------------------------------------------------------------
    Mutation(
        "rewind-snapshot-aliased",
        "rewind",
        "lotteryir/pruning/rewind.py",
        "self.snapshot = {k: t.detach().clone() for k, t in tensors.items()}",
        "self.snapshot = {k: t.detach() for k, t in tensors.items()}",
        (f"{PRUNER}::test_rewind_to_init_restores_survivors_and_unpruned",),
        "the rewind point shares storage with the live weights: rewinding returns to the trained ones",
    ),
    Mutation(
        "rewind-survivors-kept",
        "rewind",
        "lotteryir/pruning/pruner.py",
        "self.apply_mask(mask, point)",
        "self.apply_mask(mask)",
        (f"{PRUNER}::test_rewind_to_init_restores_survivors_and_unpruned",),
        "prune(rewind=True), what every round does, leaves the survivors at their trained values",
    ),
    Mutation(
        "rewind-call-survivors-kept",
        "rewind",
        "lotteryir/pruning/rewind.py",
        "bridge.write_weights([p for p in params if p.name not in skip], point)",
        "bridge.write_weights([], point)",
        ("tests/pruning/test_bridge.py::test_prune_with_rewind_equals_prune_then_rewind",),
        "pruner.rewind() leaves the survivors at their trained values",
    ),
    Mutation(
        "rewind-unpruned-kept",
        "rewind",
        "lotteryir/pruning/rewind.py",
        "                    t.copy_(point[key])",
        "                    pass",
        (f"{PRUNER}::test_rewind_to_init_restores_survivors_and_unpruned",),
        "biases and norms are not rewound with the survivors",
    ),
    Mutation(
        "rewind-late-step-off-by-one",
        "rewind",
        "lotteryir/pruning/context.py",
        "if self.round == 0 and (k == self.rewind_step or k in self.rewind_steps):",
        "if self.round == 0 and (k - 1 == self.rewind_step or k in self.rewind_steps):",
        (f"{PRUNER}::test_late_rewind_to_step_k_restores_recorded_values",),
        "step:K rewinds to the weights after step K + 1",
    ),
    # -- masking -------------------------------------------------------------------------------------
    Mutation(
        "masking-forward-unmasked",
        "masking",
        "lotteryir/pruning/bridge.py",
        "value = orig * cast(torch.Tensor, module._buffers[name + MASK_SUFFIX])",
        "value = orig",
        (f"{PRUNER}::test_pruned_weights_stay_zero_through_adamw",),
        "the forward pass does not multiply by the mask: pruned weights train back",
    ),
    Mutation(
        "masking-orig-not-zeroed",
        "masking",
        "lotteryir/pruning/bridge.py",
        "        orig.mul_(buf)",
        "        pass",
        ("tests/pruning/test_tied.py", f"{METHODS}::test_gmp_prunes_during_one_training_to_the_target"),
        "pruned entries of <attr>_orig keep their values (the pruner's zeros are broken)",
    ),
    # -- each method's defining step -----------------------------------------------------------------
    Mutation(
        "imp-no-rewind",
        "imp",
        "lotteryir/pruning/methods/base.py",
        'pruner.prune(rewind=pruner.rewind_spec.kind != "none")',
        "pruner.prune(rewind=False)",
        (f"{PRUNER}::test_rewind_to_init_restores_survivors_and_unpruned",),
        "imp prunes but never rewinds (rewind init behaves like none)",
    ),
    Mutation(
        "lr-rewind-rewinds",
        "lr-rewind",
        "lotteryir/pruning/methods/imp.py",
        'return Rewind.parse("none")',
        "return spec",
        (f"{METHODS}::test_imp_default_unchanged_and_lr_rewind_is_imp_without_rewind",),
        "lr-rewind rewinds to init instead of keeping the trained weights",
    ),
    Mutation(
        "oneshot-one-imp-step",
        "oneshot",
        "lotteryir/pruning/methods/imp.py",
        'pruner.prune(rewind=pruner.rewind_spec.kind != "none", mask_fn=lambda: mask_at(pruner, density))',
        'pruner.prune(rewind=pruner.rewind_spec.kind != "none")',
        (f"{METHODS}::test_oneshot_reaches_target_exactly_in_two_trainings",),
        "oneshot prunes one imp step (rate) instead of to the target at once",
    ),
    Mutation(
        "gmp-linear",
        "gmp",
        "lotteryir/pruning/methods/gmp.py",
        "(1.0 - (t - start) / (end - start)) ** 3",
        "(1.0 - (t - start) / (end - start)) ** 1",
        (f"{METHODS}::test_gmp_sparsity_at_named_steps_is_zhu_and_gupta_cubic",),
        "gmp's sparsity rises linearly instead of on Zhu & Gupta's cubic",
    ),
    Mutation(
        "gmp-pruned-return",
        "gmp",
        "lotteryir/pruning/methods/gmp.py",
        "apply(pruner, mask_at(pruner, density))",
        "apply(pruner, mask_at(pruner, density, current=pruner.mask.__class__.ones_like(pruner.mask)))",
        (f"{METHODS}::test_gmp_never_brings_a_pruned_weight_back",),
        "gmp recomputes each mask from every weight, so pruned weights may return",
    ),
    Mutation(
        "early-bird-never-resets",
        "early-bird",
        "lotteryir/pruning/methods/early_bird.py",
        "self._below = self._below + 1 if distance < self.epsilon else 0",
        "self._below = self._below + 1",
        (f"{METHODS}::test_early_bird_distance_and_patience_on_known_masks",),
        "early-bird counts checks since the start, not consecutive ones below epsilon",
    ),
    Mutation(
        "early-bird-distance",
        "early-bird",
        "lotteryir/pruning/methods/early_bird.py",
        "distance = float(torch.count_nonzero(flat != self._last)) / flat.numel()",
        "distance = float(torch.count_nonzero(flat != self._last)) / max(1, int(flat.sum()))",
        (f"{METHODS}::test_early_bird_distance_and_patience_on_known_masks",),
        "the mask distance is normalized by the survivors instead of all entries",
    ),
    Mutation(
        "snip-gradient-only",
        "snip",
        "lotteryir/pruning/methods/at_init.py",
        "return (t.grad * t).abs().detach() if t.grad is not None",
        "return t.grad.abs().detach() if t.grad is not None",
        (f"{METHODS}::test_snip_keeps_the_largest_saliencies",),
        "snip (and synflow) score |g| instead of |g * w|",
    ),
    Mutation(
        "synflow-signed",
        "synflow",
        "lotteryir/pruning/methods/at_init.py",
        "                t.abs_()",
        "                pass",
        (f"{METHODS}::test_synflow_scores_the_linearised_network",),
        "synflow scores the network with signed weights instead of |w| (no linearisation)",
    ),
    Mutation(
        "synflow-one-shot",
        "synflow",
        "lotteryir/pruning/methods/at_init.py",
        "self.target(pruner) ** (i / self.iterations)",
        "self.target(pruner)",
        (f"{METHODS}::test_synflow_prunes_iteratively_on_the_exponential_schedule",),
        "synflow prunes to the target in its first iteration instead of on the exponential schedule",
    ),
    # -- a ticket moved between runs -----------------------------------------------------------------
    Mutation(
        "transfer-b-mask",
        "transfer",
        "lotteryir/analysis/compare.py",
        "mask = Mask.load(round_file(run_a, r, MASK_FILE))",
        "mask = Mask.load(round_file(run_b, r, MASK_FILE))",
        (TRANSFER,),
        "the transfer trains B's own mask instead of A's",
    ),
    Mutation(
        "transfer-b-rewind",
        "transfer",
        "lotteryir/analysis/compare.py",
        "start = rewind_point(run_a)",
        "start = rewind_point(run_b)",
        (TRANSFER,),
        "the transfer starts from B's rewind point instead of A's",
    ),
    # -- the sample training and its verdict ---------------------------------------------------------
    Mutation(
        "sample-identity-single-task",
        "training",
        "lotteryir/data/sample.py",
        "return self.identity_repeat if self._identity_fixed or len(tasks) > 1 else 0",
        "return self.identity_repeat",
        (
            "tests/runs/test_sample_training.py::test_a_task_trained_alone_with_the_sample_defaults_moves_off_the_identity",
        ),
        "a task trained alone keeps the identity pairs that pinned its output at the input",
    ),
    Mutation(
        "did-not-learn-any-image",
        "evaluation",
        "lotteryir/engine/evaluate.py",
        "return bool(self.images) and all(",
        "return bool(self.images) and any(",
        ("tests/engine/test_evaluate.py::test_did_not_learn_needs_every_image_within_a_hundredth_of_a_db",),
        "a set counts as not learned when one image is left at its input, not every image",
    ),
    Mutation(
        "web-jpeg-resizes",
        "data",
        "lotteryir/data/degrade.py",
        '"jpeg": {"quality": (10, 40), "scale": None},',
        '"jpeg": {"quality": (10, 40), "scale": (0.5, 1.0)},',
        ("tests/data/test_web_degradations.py::test_jpeg_is_one_jpeg_round_trip_at_a_quality_from_10_to_40",),
        "the default web degradation downscales before its JPEG (the resize that no sample training learned)",
    ),
)


def problems(mutations: tuple[Mutation, ...] = MUTATIONS, root: Path = ROOT) -> list[str]:
    """What is wrong with the list: an ``old`` not exactly once in its file, a no-op, a test that is gone."""
    out = []
    names = [m.name for m in mutations]
    out += [f"{n}: the name is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for m in mutations:
        path = root / m.file
        if not path.is_file():
            out.append(f"{m.name}: {m.file} does not exist")
            continue
        count = path.read_text().count(m.old)
        if count != 1:
            out.append(f"{m.name}: its old text occurs {count} times in {m.file}, not once")
        if m.new == m.old:
            out.append(f"{m.name}: new is old (a no-op)")
        if not m.tests:
            out.append(f"{m.name}: no tests listed")
        for test in m.tests:
            file, _, func = test.partition("::")
            if not (root / file).exists():
                out.append(f"{m.name}: {file} does not exist")
            elif func and not re.search(rf"^def {re.escape(func)}\(", (root / file).read_text(), re.M):
                out.append(f"{m.name}: {file} has no test {func}")
    return out


def copy_tree(target: Path) -> None:
    """The package and the tests (what the mutated runs import) under ``target``."""
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=SKIP)
        else:
            shutil.copy2(src, target / name)


def pytest_args(tests: tuple[str, ...], stop_first: bool) -> list[str]:
    return ["-q", "-p", "no:cacheprovider", "-o", "addopts=", "-rf", *(["-x"] if stop_first else []), *tests]


def child_env(copy: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def run_tests(
    copy: Path, tests: tuple[str, ...], stop_first: bool = True, fork: bool = False
) -> tuple[int, str, float]:
    """(pytest's exit code, its output, seconds) for ``tests`` on the copy, in a fresh process.

    ``fork``: a child of this process, which holds torch and the other third-party modules already
    imported (see :func:`preload`) but nothing of lotteryir or the tests; else a new interpreter.
    """
    start = time.perf_counter()
    if not fork:
        args = [sys.executable, "-m", "pytest", *pytest_args(tests, stop_first)]
        done = subprocess.run(args, cwd=copy, env=child_env(copy), capture_output=True, text=True, timeout=TIMEOUT)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    with tempfile.TemporaryFile() as log:
        sys.stdout.flush(), sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: run pytest on the copy, exit without running the parent's cleanup
            code = 3
            try:
                os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
                os.chdir(copy)
                os.environ.clear(), os.environ.update(child_env(copy))
                sys.path.insert(0, str(copy))
                # The parent may hold the unmutated package (the harness imports lotteryir): a submodule
                # imported now would be found beside it, not in the copy, and every mutation would survive.
                for name in [m for m in sys.modules if m.split(".")[0] in OWN]:
                    del sys.modules[name]
                import pytest

                code = int(pytest.main(pytest_args(tests, stop_first)))
            except BaseException:  # noqa: BLE001 - whatever happened, the parent reads it from the log
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os._exit(code)
        code = wait(pid)
        log.seek(0)
        return code, log.read().decode(errors="replace"), time.perf_counter() - start


def wait(pid: int) -> int:
    """The child's exit code; one still running after :data:`TIMEOUT` seconds is killed (-9)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def preload(copy: Path, tests: tuple[str, ...]) -> int:
    """Import here the third-party modules that collecting ``tests`` imports (torch, torchvision, numpy, ...).

    A forked child then starts with them and imports only lotteryir and the tests (from the mutated
    copy): a few seconds less per mutation. They are listed by a throwaway interpreter, so that this
    process never imports lotteryir and runs no torch operation (forking after OpenMP started is unsafe).
    """
    script = (
        "import json, sys, pytest\n"
        f"pytest.main({pytest_args(tests, False) + ['--collect-only']!r})\n"
        f"own = {OWN + ('__main__',)!r}\n"
        "print('MODULES' + json.dumps(sorted(m for m in sys.modules if m.split('.')[0] not in own)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=copy, env=child_env(copy), capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MODULES")), "MODULES[]")
    count = 0
    for name in json.loads(line[len("MODULES") :]):
        try:
            importlib.import_module(name)
            count += 1
        except Exception:  # noqa: BLE001 - a module that does not import on its own is imported later, in the child
            pass
    return count


def first_failure(output: str) -> str | None:
    """The node id of the first FAILED test in pytest's short summary."""
    m = re.search(r"^FAILED (\S+)", output, re.M)
    return m.group(1) if m else None


def check(copy: Path, m: Mutation, fork: bool) -> dict:
    """Apply ``m`` to the copy, run its tests, put the file back; the outcome as a JSON-able dict."""
    path = copy / m.file
    original = path.read_text()
    path.write_text(original.replace(m.old, m.new, 1))
    try:
        code, output, seconds = run_tests(copy, m.tests, fork=fork)
    finally:
        path.write_text(original)
    # pytest exits 1 when tests failed; 2-5 mean it could not run them (an import error, no tests...).
    status = "killed" if code in (1, -signal.SIGKILL) else "survived" if code == 0 else "error"
    by = first_failure(output) if code == 1 else f"timeout after {TIMEOUT} s" if code == -signal.SIGKILL else None
    result = {"name": m.name, "area": m.area, "file": m.file, "why": m.why, "tests": list(m.tests)}
    result.update(status=status, killed_by=by, seconds=round(seconds, 2))
    if status == "error":
        result["output_tail"] = output[-1500:].replace(str(copy), "<copy>")
    return result


def table(results: list[dict]) -> str:
    rows = [("mutation", "area", "status", "killed by", "s")]
    for r in results:
        by = (r["killed_by"] or "-").replace("tests/", "")
        rows.append((r["name"], r["area"], r["status"], by, f"{r['seconds']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only (not written to --out)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--spawn", action="store_true", help="a new interpreter per mutation instead of a fork")
    args = parser.parse_args(argv)
    sitting = harness.Sitting(["benchmarks/mutations.py", *argv], threads=1)  # the results file's provenance
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:36} {m.file}: {m.why}")
        return 0
    wrong = problems()
    if wrong:
        print("the mutation list is broken:\n  " + "\n  ".join(wrong), file=sys.stderr)
        return 2
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    unknown = sorted(set(args.only or ()) - {m.name for m in MUTATIONS})
    if unknown:
        print(f"unknown mutation(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported here: one thread, nothing to break a fork
    fork = hasattr(os, "fork") and not args.spawn
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lotteryir-mutations-") as tmp:
        copy = Path(tmp)
        copy_tree(copy)
        every = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        if fork:
            print(f"preloaded {preload(copy, every)} third-party modules", flush=True)
        code, output, seconds = run_tests(copy, every, stop_first=False, fork=fork)
        if code != 0:
            print(output[-3000:].replace(tmp, "<copy>"), file=sys.stderr)
            print(f"the unmutated tests fail (exit {code}): fix them before measuring mutations", file=sys.stderr)
            return 1
        print(f"unmutated: {len(every)} test selections pass ({seconds:.1f} s)", flush=True)
        results = []
        for m in chosen:
            results.append(check(copy, m, fork))
            r = results[-1]
            print(f"  {r['name']}: {r['status']} ({r['seconds']:.1f} s) {r['killed_by'] or ''}", flush=True)
    killed = sum(r["status"] == "killed" for r in results)
    wall = time.perf_counter() - started
    print()
    print(table(results))
    print(f"\nscore: {killed}/{len(results)} killed, {wall:.0f} s")
    if not args.only:
        payload = {
            "command": " ".join(["python", "benchmarks/mutations.py", *argv]),
            "processes": "forked from one that imported the third-party modules" if fork else "a new interpreter each",
            "wall_seconds": round(wall, 1),
            "baseline_seconds": round(seconds, 1),
            "score": f"{killed}/{len(results)}",
            "killed": killed,
            "total": len(results),
            "mutations": results,
            "provenance": harness.provenance(sitting, threads=1),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.out.resolve().relative_to(ROOT) if args.out.resolve().is_relative_to(ROOT) else args.out}")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
