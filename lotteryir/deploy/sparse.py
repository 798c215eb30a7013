"""A sparse CPU inference path: pruned 1x1 convolutions and linears as CSR matrix products.

In MIR-L and Restormer, 1x1 convolutions hold about 80% of the multiply-adds. For one
image a 1x1 convolution is ``W (Cout x Cin) @ X (Cin x H*W)``; with ``W`` in CSR form,
``torch.sparse.mm`` (MKL on x86) costs in proportion to the surviving weights. One call
over a whole high-resolution image streams every row of ``X`` from main memory once per
survivor and loses to the dense convolution; splitting the pixels into blocks of about
a thousand keeps each block's rows in cache, and that is what makes it pay (measured by
``benchmarks/sparse_speed.py``). Layers denser than ``max_density`` stay dense.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .onnx_export import plain_copy

Layout = Literal["csr", "strided"]
MAX_DENSITY = 0.3  # above this, the dense convolution wins on the layers measured (benchmarks/sparse_speed.py)
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

    def __init__(self, conv: nn.Conv2d, layout: Layout = "csr", block: int = BLOCK) -> None:
        super().__init__()
        w = conv.weight.detach()[:, :, 0, 0].contiguous()
        self.out_channels, self.in_channels = w.shape
        self.layout, self.block = layout, block
        self.register_buffer("weight", _csr(w) if layout == "csr" else w)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.density = float(torch.count_nonzero(w)) / max(w.numel(), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pixels = h * w
        flat = x.reshape(n, c, pixels)
        out = torch.empty(n, self.out_channels, pixels, dtype=x.dtype, device=x.device)
        product = torch.sparse.mm if self.layout == "csr" else torch.mm
        for i in range(n):
            for start in range(0, pixels, self.block):
                cols = slice(start, min(start + self.block, pixels))
                out[i, :, cols] = product(self.weight, flat[i, :, cols])
        if self.bias is not None:
            out += self.bias[:, None]
        return out.view(n, self.out_channels, h, w)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, layout={self.layout}, density={self.density:.3f}, block={self.block}"


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
    """Which layers :func:`sparsify` replaced, and which it left dense (with why)."""

    replaced: dict[str, float] = field(default_factory=dict)  # name -> density
    dense: dict[str, str] = field(default_factory=dict)  # name -> reason


def _is_pointwise(m: nn.Module) -> bool:
    return (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride == (1, 1) and m.groups == 1
            and m.dilation == (1, 1) and m.padding in ((0, 0), "valid") and m.padding_mode == "zeros")


def sparsify(
    model: nn.Module, *, max_density: float = MAX_DENSITY, layout: Layout = "csr", block: int = BLOCK,
) -> nn.Module:
    """A copy of ``model`` that computes the same function with sparse kernels where they pay.

    Every 1x1 ``Conv2d`` and ``Linear`` whose weight has at most ``max_density`` non-zeros
    becomes a CSR product (a 1x1 conv over blocks of ``block`` pixels); everything else
    stays as it was. Takes a plain model whose pruned weights are exact zeros (what
    ``load_ticket``/``load_checkpoint`` return); masks attached with torch.nn.utils.prune
    are made permanent in the copy. CPU inference only. ``layout="strided"`` builds the
    same blocked formulation with dense weights, for comparison. The copy's
    ``sparsify_report`` says what was replaced.
    """
    if layout not in ("csr", "strided"):
        raise ValueError(f"layout must be 'csr' or 'strided', got {layout!r}")
    if block < 1:
        raise ValueError(f"block must be a positive number of pixels, got {block}")
    net = plain_copy(model)
    report = SparsifyReport()
    for name, module in list(net.named_modules()):
        if not (_is_pointwise(module) or isinstance(module, nn.Linear)):
            continue
        density = float(torch.count_nonzero(module.weight)) / module.weight.numel()
        if density > max_density:
            report.dense[name] = f"density {density:.3f} > {max_density:g}"
            continue
        if isinstance(module, nn.Linear):
            if layout != "csr":
                continue
            replacement: nn.Module = SparseLinear(module)
        else:
            replacement = BlockedConv1x1(module, layout, block)
        _set_submodule(net, name, replacement)
        report.replaced[name] = density
    net.sparsify_report = report
    return net.eval()


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, module)

