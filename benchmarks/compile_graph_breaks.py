"""torch.compile on a network with a graph break: graphs and step times, masked against dense.

A NAFNet-style network (width 16, 4 blocks) whose ``LayerNorm2d`` is NAFNet's custom
``torch.autograd.Function`` as published: dynamo cannot trace its backward
(``ctx.saved_variables``), so it runs every frame that calls the norm eagerly and
compiles only what those frames call. One training step (forward, L1 loss,
backward, AdamW step) on CPU, four ways: eager and compiled (inductor), dense and
with masks of density 0.8**10 attached by an ``IterativeMagnitudePruner``.

Reported: the graphs torch.compile builds for each network (a counting backend,
each network from a fresh dynamo, two steps),
median wall-clock and CPU time per step over interleaved repetitions (the four
steps in rotating order, so drift in machine load hits all alike), and the ratios
compiled-masked / eager-masked and compiled-masked / compiled-dense.
``--plain-norm`` replaces the Function by the same arithmetic in plain ops (no
graph break: one graph each; inductor then compiles the whole network, forward and
backward, which took over 6 minutes at load average 24 on 2 cores, so it is not in the
committed results).

    OMP_NUM_THREADS=1 python benchmarks/compile_graph_breaks.py [--batch 4 --patch 48 --reps 12] [--plain-norm]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from harness import Sitting, provenance
from torch import nn

from lotteryir.pruning import IterativeMagnitudePruner, PruningWarning

ROOT = Path(__file__).resolve().parents[1]


class LayerNormFunction(torch.autograd.Function):
    """NAFNet's (megvii-research/NAFNet, basicsr/models/archs/arch_util.py), unchanged in substance."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        ctx.eps = eps
        _, c, _, _ = x.size()
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + eps).sqrt()
        ctx.save_for_backward(y, var, weight)
        return weight.view(1, c, 1, 1) * y + bias.view(1, c, 1, 1)

    @staticmethod
    def backward(ctx, grad_output):
        eps = ctx.eps
        _, c, _, _ = grad_output.size()
        y, var, weight = ctx.saved_variables
        g = grad_output * weight.view(1, c, 1, 1)
        mean_g = g.mean(dim=1, keepdim=True)
        mean_gy = (g * y).mean(dim=1, keepdim=True)
        gx = 1.0 / torch.sqrt(var + eps) * (g - y * mean_gy - mean_g)
        return (
            gx,
            (grad_output * y).sum(dim=3).sum(dim=2).sum(dim=0),
            grad_output.sum(dim=3).sum(dim=2).sum(dim=0),
            None,
        )


class LayerNorm2d(nn.Module):
    def __init__(self, c: int, plain: bool, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps, self.plain = eps, plain

    def forward(self, x):
        if not self.plain:
            return LayerNormFunction.apply(x, self.weight, self.bias, self.eps)
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class NAFBlock(nn.Module):
    """NAFNet's block: norm, 1x1 expand, depthwise 3x3, SimpleGate, channel attention, 1x1; then the FFN."""

    def __init__(self, c: int, plain: bool) -> None:
        super().__init__()
        self.norm1, self.norm2 = LayerNorm2d(c, plain), LayerNorm2d(c, plain)
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        a, b = self.conv2(self.conv1(self.norm1(inp))).chunk(2, dim=1)
        x = a * b
        y = inp + self.conv3(x * self.sca(x)) * self.beta
        a, b = self.conv4(self.norm2(y)).chunk(2, dim=1)
        return y + self.conv5(a * b) * self.gamma


class NAFNetLike(nn.Module):
    def __init__(self, width: int = 16, blocks: int = 4, plain: bool = False) -> None:
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*[NAFBlock(width, plain) for _ in range(blocks)])
        self.ending = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x):
        return x + self.ending(self.body(self.intro(x)))


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], tuple[float, float]]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)

    def step() -> tuple[float, float]:
        """Wall-clock and CPU seconds of one training step."""
        w0, c0 = time.perf_counter(), time.process_time()
        F.l1_loss(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - w0, time.process_time() - c0

    return step


def count_graphs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Graphs torch.compile builds for two training steps of ``model`` from a fresh dynamo (no codegen)."""
    import torch._dynamo

    torch._dynamo.reset()
    built: list[int] = []

    def backend(gm, example_inputs):
        built.append(1)
        return gm.forward

    step = make_step(torch.compile(model, backend=backend), x, y)
    step()
    step()
    torch._dynamo.reset()
    return len(built)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--reps", type=int, default=12, help="timed steps per network and mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plain-norm", action="store_true", help="the norm in plain ops: no graph break")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/compile_graph_breaks.json")
    args = parser.parse_args()
    sitting = Sitting()  # when it started, on which commit and machine: the results file says
    out = (
        args.out or ROOT / "benchmarks" / "results" / f"compile_graph_breaks{'_plain' if args.plain_norm else ''}.json"
    )

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # NAFNet's ctx.saved_variables
    logging.getLogger("lotteryir").setLevel(logging.ERROR)  # "no gradient yet": the network is untrained
    torch.manual_seed(0)
    dense = NAFNetLike(args.width, args.blocks, args.plain_norm).train()
    masked = copy.deepcopy(dense)
    pruner = IterativeMagnitudePruner(masked, rate=0.2)
    with warnings.catch_warnings():  # pruning an untrained network empties some layers: expected here
        warnings.simplefilter("ignore", PruningWarning)
        for _ in range(10):
            pruner.prune()
    g = torch.Generator().manual_seed(1)
    y = torch.rand(args.batch, 3, args.patch, args.patch, generator=g)
    x = (y + 0.1 * torch.randn(y.shape, generator=g)).clamp(0, 1)
    load = os.getloadavg()[0]
    print(
        f"NAFNet-like width {args.width}, {args.blocks} blocks, "
        f"norm {'plain ops' if args.plain_norm else 'autograd.Function'}, CPU, "
        f"batch {args.batch}x{args.patch}x{args.patch}, {args.threads} thread(s), density {pruner.density:.4f}, "
        f"torch {torch.__version__}, load average {load:.1f} on {os.cpu_count()} cores"
    )

    from torch._dynamo.utils import counters

    graphs = {name: count_graphs(net, x, y) for name, net in (("dense", dense), ("masked", masked))}
    nets = {"eager dense": dense, "eager masked": masked}
    compile_s: dict[str, float] = {}
    for name, net in (("dense", dense), ("masked", masked)):
        compiled = torch.compile(net)
        t0 = time.perf_counter()
        make_step(compiled, x, y)()  # the first step compiles
        compile_s[name] = time.perf_counter() - t0
        nets[f"compiled {name}"] = compiled
    steps = {name: make_step(net, x, y) for name, net in nets.items()}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    names = list(steps)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            times[name].append(steps[name]())
    before = counters["stats"]["unique_graphs"]
    pruner.prune()  # a pruning round changes the masks in place
    steps["compiled masked"]()
    new_after_pruning = counters["stats"]["unique_graphs"] - before

    med = {
        clock: {n: statistics.median(t[i] for t in times[n]) for n in names} for i, clock in enumerate(("wall", "cpu"))
    }
    ratios = {
        clock: {
            "compiled_masked_vs_eager_masked": m["compiled masked"] / m["eager masked"],
            "compiled_masked_vs_compiled_dense": m["compiled masked"] / m["compiled dense"],
            "eager_masked_vs_eager_dense": m["eager masked"] / m["eager dense"],
        }
        for clock, m in med.items()
    }
    result = {
        "model": f"nafnet-like/w{args.width}/b{args.blocks}",
        "norm": "plain" if args.plain_norm else "autograd_function",
        "density": pruner.density,
        "batch": args.batch,
        "patch": args.patch,
        "threads": args.threads,
        "reps": args.reps,
        "torch": torch.__version__,
        "load_average_1min_at_start": load,
        "load_average_1min_at_end": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "graphs": {**graphs, "new_after_pruning": new_after_pruning},
        "compile_seconds": compile_s,
        "median_s": med,
        "ratios": ratios,
        "times": times,
        "provenance": provenance(sitting, threads=args.threads),
    }

    print(f"\n{'step':16} {'wall ms':>8} {'cpu ms':>8}")
    for n in names:
        print(f"{n:16} {1000 * med['wall'][n]:>8.1f} {1000 * med['cpu'][n]:>8.1f}")
    print(f"\n{'ratio (medians)':36} {'wall':>6} {'cpu':>6}")
    for key in ratios["cpu"]:
        print(f"{key.replace('_', ' '):36} {ratios['wall'][key]:>6.3f} {ratios['cpu'][key]:>6.3f}")
    print(
        f"torch.compile graphs: dense {graphs['dense']}, masked {graphs['masked']}, new after a pruning round "
        f"{new_after_pruning} (compiling took {compile_s['dense']:.0f} s dense, {compile_s['masked']:.0f} s masked)"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
