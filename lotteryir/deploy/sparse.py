"""A sparse CPU inference path: pruned 1x1 convolutions and linears as CSR matrix products.

In MIR-L and Restormer, 1x1 convolutions hold about 80% of the multiply-adds. For one
image a 1x1 convolution is ``W (Cout x Cin) @ X (Cin x H*W)``; with ``W`` in CSR form,
``torch.sparse.mm`` (MKL on x86) costs in proportion to the surviving weights. One call
over a whole high-resolution image streams every row of ``X`` from main memory once per
survivor and loses to the dense convolution; splitting the pixels into blocks of about
a thousand keeps each block's rows in cache, and that is what makes it pay (measured by
``benchmarks/sparse_speed.py``). Layers denser than ``max_density`` stay dense.

A 1x1 convolution that feeds a depthwise 3x3 one (twice in every Restormer/PromptIR block)
is computed together with it, band of rows by band of rows (:class:`PointDepth`), with
sparse or dense weights alike: at 256x256 and above, writing and re-reading the wide
intermediate, and the depthwise convolution on image-sized inputs, cost as much as the
arithmetic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import fx, nn

from .plain import plain_copy

Layout = Literal["csr", "strided"]
# CSR against the dense product over the same pixel blocks, MIR-L's 1x1 shapes, one thread: about
# 2x faster at density 0.107, 1.2-1.3x at 0.15, even at 0.2, 0.5-0.7x at 0.3 (a loaded machine).
MAX_DENSITY = 0.2
BLOCK = 1024  # pixels per product: a block of a 1x1 conv's input stays in L2 at MIR-L's widths


def _csr(weight: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta": the products used here are stable
        return weight.to_sparse_csr()


class BlockedConv1x1(nn.Module):
    """A 1x1 ``Conv2d`` (stride 1, no groups) as ``W @ X`` over blocks of ``block`` pixels.

    ``layout="csr"`` stores ``W`` sparse; "strided" keeps it dense (the same
    formulation without sparsity, to measure what sparsity alone gains).
    """

    weight: torch.Tensor

    def __init__(self, conv: nn.Conv2d, layout: Layout = "csr", block: int = BLOCK) -> None:
        super().__init__()
        w = conv.weight.detach()[:, :, 0, 0].contiguous()
        self.out_channels, self.in_channels = w.shape
        self.layout, self.block = layout, block
        self.register_buffer("weight", _csr(w) if layout == "csr" else w)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.density = float(torch.count_nonzero(w)) / max(w.numel(), 1)

    def product(self, columns: torch.Tensor) -> torch.Tensor:
        """``W @ columns`` (+ bias) for a C_in x P slice of an image's pixels."""
        y = torch.sparse.mm(self.weight, columns) if self.layout == "csr" else torch.mm(self.weight, columns)
        return y if self.bias is None else y.add_(self.bias[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pixels = h * w
        flat = x.reshape(n, c, pixels)
        out = torch.empty(n, self.out_channels, pixels, dtype=x.dtype, device=x.device)
        for i in range(n):
            for start in range(0, pixels, self.block):
                cols = slice(start, min(start + self.block, pixels))
                out[i, :, cols] = self.product(flat[i, :, cols])
        return out.view(n, self.out_channels, h, w)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, layout={self.layout}, "
            f"density={self.density:.3f}, block={self.block}"
        )


class PointDepth(nn.Module):
    """A 1x1 convolution followed by a 3x3 depthwise one, computed band of rows by band of rows.

    Restormer-style blocks widen the features with a 1x1 conv (to 3x or 5.3x the channels)
    and filter the result depthwise. Computing both for a few rows at a time (plus one halo
    row each side) keeps the wide intermediate in cache instead of writing and re-reading an
    image-sized tensor, and hands the depthwise conv inputs small enough for its fast path.
    """

    def __init__(self, pointwise: BlockedConv1x1, depthwise: nn.Conv2d, pixels: int = 4 * BLOCK) -> None:
        super().__init__()
        self.pointwise, self.depthwise, self.pixels = pointwise, depthwise, pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        channels = self.pointwise.out_channels
        rows = max(4, self.pixels // w - 2)
        flat = x.reshape(n, c, h * w)
        out = torch.empty(n, channels, h, w, dtype=x.dtype, device=x.device)
        for i in range(n):
            for top in range(0, h, rows):
                bottom = min(top + rows, h)
                first, last = max(top - 1, 0), min(bottom + 1, h)  # one halo row each side, inside the image
                mid = self.pointwise.product(flat[i, :, first * w : last * w]).view(1, channels, last - first, w)
                # Outside the image the depthwise conv sees zeros (its own padding), not the 1x1 conv's bias.
                mid = F.pad(mid, (0, 0, int(first == top), int(last == bottom)))
                out[i : i + 1, :, top:bottom] = F.conv2d(
                    mid, self.depthwise.weight, self.depthwise.bias, padding=(0, 1), groups=channels
                )
        return out


class SparseLinear(nn.Module):
    """``nn.Linear`` with a CSR weight: ``(W @ x^T)^T + b``."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach()
        self.out_features, self.in_features = w.shape
        self.register_buffer("weight", _csr(w.contiguous()))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.density = float(torch.count_nonzero(w)) / max(w.numel(), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = torch.sparse.mm(self.weight, x.reshape(-1, self.in_features).t()).t()
        y = y.reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, density={self.density:.3f}"


@dataclass
class SparsifyReport:
    """Which layers :func:`sparsify` made sparse, which it left dense (with why), which it fused."""

    replaced: dict[str, float] = field(default_factory=dict)  # name -> density
    dense: dict[str, str] = field(default_factory=dict)  # name -> reason
    fused: list[tuple[str, str]] = field(default_factory=list)  # (1x1 conv, depthwise conv) run as PointDepth


def _is_pointwise(m: nn.Module | None) -> bool:
    return (
        isinstance(m, nn.Conv2d)
        and m.kernel_size == (1, 1)
        and m.stride == (1, 1)
        and m.groups == 1
        and m.dilation == (1, 1)
        and m.padding in ((0, 0), "valid")
        and m.padding_mode == "zeros"
    )


def _is_depthwise3x3(m: nn.Module | None) -> bool:
    return (
        isinstance(m, nn.Conv2d)
        and m.kernel_size == (3, 3)
        and m.stride == (1, 1)
        and m.padding == (1, 1)
        and m.dilation == (1, 1)
        and m.groups == m.in_channels == m.out_channels
        and m.padding_mode == "zeros"
    )


def _fusable_pairs(net: nn.Module) -> list[tuple[str, str]]:
    """Sibling (1x1 conv, depthwise 3x3 conv) names where the depthwise conv alone consumes the 1x1 output.

    Read from the parent's traced graph (torch.fx); a parent that cannot be traced keeps its layers.
    """
    pairs = []
    for prefix, parent in net.named_modules():
        children = dict(parent.named_children())
        if not (any(map(_is_pointwise, children.values())) and any(map(_is_depthwise3x3, children.values()))):
            continue
        try:
            graph = fx.Tracer().trace(parent)
        except Exception:  # data-dependent control flow and the like: nothing fused here
            continue
        calls = [n for n in graph.nodes if n.op == "call_module"]
        count = {t: sum(n.target == t for n in calls) for t in {n.target for n in calls}}
        for node in calls:
            users = list(node.users)
            if not (_is_pointwise(children.get(node.target)) and len(users) == 1):
                continue
            user = users[0]
            if (
                user.op == "call_module"
                and _is_depthwise3x3(children.get(user.target))
                and user.args == (node,)
                and not user.kwargs
                and count[node.target] == count[user.target] == 1
                and children[user.target].in_channels == children[node.target].out_channels
            ):
                name = f"{prefix}." if prefix else ""
                pairs.append((name + node.target, name + user.target))
    return pairs


def sparsify(
    model: nn.Module,
    *,
    max_density: float = MAX_DENSITY,
    layout: Layout = "csr",
    block: int = BLOCK,
) -> nn.Module:
    """A copy of ``model`` that computes the same function with sparse kernels where they pay.

    Every 1x1 ``Conv2d`` and ``Linear`` whose weight has at most ``max_density`` non-zeros
    becomes a CSR product (a 1x1 conv over blocks of ``block`` pixels). A 1x1 conv whose
    output only feeds a depthwise 3x3 conv (Restormer's and MIR-L's attention and
    feed-forward) is computed together with it, a few rows at a time (:class:`PointDepth`).
    Everything else stays as it was. Takes a plain model whose pruned weights are exact zeros
    (what ``load_ticket``/``load_checkpoint`` return); masks attached with torch.nn.utils.prune
    are made permanent in the copy. CPU inference only. ``layout="strided"`` builds the same
    formulation with dense weights, to measure what sparsity alone gains. The copy's
    ``sparsify_report`` says what was replaced.
    """
    if layout not in ("csr", "strided"):
        raise ValueError(f"layout must be 'csr' or 'strided', got {layout!r}")
    if block < 1:
        raise ValueError(f"block must be a positive number of pixels, got {block}")
    net = plain_copy(model)
    report = SparsifyReport()
    pairs = _fusable_pairs(net)
    fused_pointwise = {a for a, _ in pairs}
    for name, module in list(net.named_modules()):
        if not (_is_pointwise(module) or isinstance(module, nn.Linear)):
            continue
        density = float(torch.count_nonzero(module.weight)) / module.weight.numel()
        sparse = density <= max_density
        if not sparse:
            report.dense[name] = f"density {density:.3f} > {max_density:g}"
        if isinstance(module, nn.Linear):
            if sparse and layout == "csr":
                _set_submodule(net, name, SparseLinear(module))
                report.replaced[name] = density
        elif sparse or name in fused_pointwise:
            _set_submodule(net, name, BlockedConv1x1(module, layout if sparse else "strided", block))
            if sparse:
                report.replaced[name] = density
    for pointwise, depthwise in pairs:
        point, depth = net.get_submodule(pointwise), net.get_submodule(depthwise)
        assert isinstance(point, BlockedConv1x1) and isinstance(depth, nn.Conv2d)  # replaced just above
        fused = PointDepth(point, depth, pixels=4 * block)
        _set_submodule(net, depthwise, fused)
        _set_submodule(net, pointwise, nn.Identity())  # the depthwise slot now takes the 1x1 conv's input
        report.fused.append((pointwise, depthwise))
    setattr(net, "sparsify_report", report)  # noqa: B010  (an attribute nn.Module does not declare)
    return net.eval()


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, module)
