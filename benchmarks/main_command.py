"""The README's main command, run as a user runs it, and its round table as the README shows it.

    python benchmarks/main_command.py            # lotteryir prune --model mirl --rounds 3, ~9 min on 2 cores

Runs ``python -m lotteryir prune --model mirl --rounds 3`` in a fresh folder (a new process, the
defaults a user gets), then ``lotteryir report RUN --json``. Writes
``benchmarks/results/main_command.json`` (the command's first line, its wall time, the machine, the
report), ``benchmarks/results/main_command.md`` (the round table in the README's layout, with the
degraded input as its first row and the sets where a round is worse than its input named below)
and ``benchmarks/results/main_command.png`` (the run's report.png).
The README's table is rows of that file, checked by ``tests/test_docs_figures.py``; copy
``report.png`` with ``--figure docs/sample_run_report.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Sitting, provenance

from lotteryir.cli.render import short as _short  # the column names the CLI's own table uses

RESULTS = Path(__file__).resolve().parent / "results"
COMMAND = ["prune", "--model", "mirl", "--rounds", "3"]


def markdown(history: list[dict]) -> list[str]:
    """The round table as markdown: an input row, then one row per round; notes on worse sets below."""
    labels = sorted({label for h in history for label in h["eval"]})
    names = [_short(label) for label in labels]
    head = ["round", "density", "left", *names, "mean PSNR", "gain", "SSIM", "time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = history[0]["eval"]
    inputs = [first[label]["input_psnr"] for label in labels]
    input_ssim = statistics.fmean(first[label]["input_ssim"] for label in labels)
    lines.append(
        "| input | | | "
        + " | ".join(f"{v:.2f}" for v in inputs)
        + f" | {statistics.fmean(inputs):.2f} | | {input_ssim:.4f} | |"
    )
    notes = []
    for h in history:
        ev = h["eval"]
        cells = [f"{ev[label]['psnr']:.2f}" for label in labels]
        gain = h["mean_psnr"] - h["mean_input_psnr"]
        lines.append(
            f"| {h['round']} | {h['density']:.4f} | {h['remaining']:,} | "
            + " | ".join(cells)
            + f" | {h['mean_psnr']:.2f} | {gain:+.2f} | {h['mean_ssim']:.4f} | {h['seconds']:.0f} s |"
        )
        worse = [label for label in labels if ev[label]["psnr"] < ev[label]["input_psnr"]]
        if worse:
            notes.append(
                f"round {h['round']} is worse than its input on "
                + ", ".join(f"{_short(w)} ({ev[w]['psnr'] - ev[w]['input_psnr']:+.2f} dB)" for w in worse)
            )
    return [*lines, "", *notes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figure", type=Path, help="Copy the run's report.png here too.")
    parser.add_argument("--out", type=Path, default=RESULTS / "main_command.json")
    parser.add_argument("--render-only", action="store_true", help="Rewrite the .md from the JSON; run nothing.")
    args = parser.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    if args.render_only:
        write_markdown(json.loads(args.out.read_text()), args.out.with_suffix(".md"))
        return
    env = {k: v for k, v in os.environ.items() if k != "LOTTERYIR_DEBUG"}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "lotteryir", *COMMAND],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"the main command failed ({done.returncode}):\n{done.stderr[-3000:]}")
        first = next(line for line in done.stdout.splitlines() if line.startswith("lotteryir prune:"))
        run = next(p for p in (Path(folder) / "runs").iterdir() if p.is_dir())
        report = subprocess.run(
            [sys.executable, "-m", "lotteryir", "report", str(run), "--json"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        payload = json.loads(report.stdout)
        payload["run"] = os.path.relpath(payload["run"], folder)  # as the command names it: relative
        # The run's figure is kept beside the results (the run folder is temporary), and copied on request.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "report.png", args.out.with_suffix(".png"))
        if args.figure:
            shutil.copyfile(run / "report.png", args.figure)
    result = {
        "command": "lotteryir " + " ".join(COMMAND),
        "first_line": first.replace(folder + os.sep, ""),
        "wall_seconds": seconds,
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "platform": platform.platform()},
        "report": payload,
        "provenance": provenance(sitting, threads=payload["config"].get("threads")),  # the command's own
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print("\n".join(write_markdown(result, args.out.with_suffix(".md"))))
    print(f"\n{seconds / 60:.1f} min; wrote {args.out} and {args.out.with_suffix('.md')}")


def write_markdown(result: dict, path: Path) -> list[str]:
    """The .md beside the JSON: the command, its wall time and machine, the round table."""
    table = markdown(result["report"]["rounds"])
    m = result["machine"]
    path.write_text(
        f"`{result['command']}`, {result['wall_seconds'] / 60:.1f} min wall on {m['cpus']} CPUs "
        f"(load average at the end {m['load_average'][0]:.1f})\n\n{result['first_line']}\n\n" + "\n".join(table) + "\n"
    )
    return table


if __name__ == "__main__":
    main()
