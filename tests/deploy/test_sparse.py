"""The sparse CPU path computes the same function as the network it came from."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lotteryir.deploy import BlockedConv1x1, PointDepth, SparseLinear, sparsify
from lotteryir.engine import restore_image
from lotteryir.models.restormer import TransformerBlock
from lotteryir.pruning import Mask, attach_masks, find_prunable

from .helpers import pruned


@pytest.mark.parametrize("name", ["mirl", "restormer"])
@pytest.mark.parametrize("size", ["tiny", "small"])
def test_same_function(name, size):
    model = pruned(name, size, rounds=10)
    sparse = sparsify(model, block=256)  # small blocks: several per image, and a ragged last one
    x = torch.rand(2, 3, 37, 45)
    with torch.no_grad():
        expected, got = model(x), sparse(x)
    assert (got - expected).abs().max() <= 1e-4
    assert (expected - x).abs().max() > 1e-3  # the network does something
    modules = dict(sparse.named_modules())
    report = sparse.sparsify_report
    fused = dict(report.fused)  # 1x1 conv -> the depthwise conv it now runs with
    assert len(fused) == 2 * sum(isinstance(m, TransformerBlock) for m in model.modules())  # attention and FFN
    replaced = [modules[fused[n]].pointwise if n in fused else modules[n] for n in report.replaced]
    assert replaced and all(isinstance(m, (BlockedConv1x1, SparseLinear)) for m in replaced)
    assert all(isinstance(modules[d], PointDepth) and isinstance(modules[p], nn.Identity) for p, d in fused.items())
    assert all(m.density <= 0.2 for m in replaced)


def test_report_and_threshold():
    model = pruned("mirl", "tiny", rounds=3)  # density 0.512 in every layer: too dense to pay
    sparse = sparsify(model)
    assert not sparse.sparsify_report.replaced
    assert all("> 0.2" in why for why in sparse.sparsify_report.dense.values())
    everything = sparsify(model, max_density=1.0)
    pointwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(everything.sparsify_report.replaced) == len(pointwise) + len(linears)
    assert not any(
        isinstance(m, (nn.Linear, nn.Conv2d)) and getattr(m, "kernel_size", (3, 3)) == (1, 1)
        for m in everything.modules()
    )
    # Fused pairs whose 1x1 conv is too dense keep a dense product inside the fused op.
    assert all(m.pointwise.layout == "strided" for m in sparse.modules() if isinstance(m, PointDepth))
    with pytest.raises(ValueError, match="layout"):
        sparsify(model, layout="bsr")
    with pytest.raises(ValueError, match="block"):
        sparsify(model, block=0)


def test_strided_layout_and_restore_image():
    model = pruned("restormer", "tiny", rounds=10)
    dense_blocked = sparsify(model, max_density=1.0, layout="strided", block=100)
    sparse = sparsify(model)
    assert sparse.multiple == model.multiple  # restore_image pads to the network's multiple
    image = torch.rand(3, 50, 41)
    expected = restore_image(model, image)
    assert (restore_image(sparse, image) - expected).abs().max() <= 1e-4
    assert (restore_image(dense_blocked, image) - expected).abs().max() <= 1e-4
    tiled = restore_image(sparse, image, tile=32, overlap=8)
    assert (tiled - restore_image(model, image, tile=32, overlap=8)).abs().max() <= 1e-4


def test_original_untouched_and_masks_applied():
    plain = pruned("mirl", "tiny", rounds=10)
    masked = pruned("mirl", "tiny", rounds=0)
    masked.load_state_dict(plain.state_dict())
    attach_masks(masked, Mask({p.name: p.module.weight != 0 for p in find_prunable(plain)}))
    before = {k: v.clone() for k, v in masked.state_dict().items()}
    sparse = sparsify(masked)
    assert sparse.sparsify_report.replaced
    assert all(torch.equal(v, masked.state_dict()[k]) for k, v in before.items())
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert (sparse(x) - plain(x)).abs().max() <= 1e-4


@settings(max_examples=25, deadline=None)
@given(
    cin=st.integers(1, 40),
    cout=st.integers(1, 40),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    density=st.floats(0.0, 1.0),
    block=st.integers(1, 300),
    bias=st.booleans(),
    layout=st.sampled_from(["csr", "strided"]),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_blocked_conv_matches_conv2d(cin, cout, h, w, density, block, bias, layout, channels_last, seed):
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(cin, cout, 1, bias=bias)
    with torch.no_grad():
        conv.weight.mul_(torch.rand(conv.weight.shape, generator=gen) < density)
    x = torch.randn(2, cin, h, w, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = BlockedConv1x1(conv, layout, block)(x)
    assert got.shape == (2, cout, h, w)
    assert (got - F.conv2d(x, conv.weight, conv.bias)).abs().max() <= 1e-4


@settings(max_examples=15, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), max_size=2),
    fin=st.integers(1, 30),
    fout=st.integers(1, 30),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_sparse_linear_matches_linear(lead, fin, fout, bias, seed):
    gen = torch.Generator().manual_seed(seed)
    linear = nn.Linear(fin, fout, bias=bias)
    with torch.no_grad():
        linear.weight.mul_(torch.rand(linear.weight.shape, generator=gen) < 0.2)
    x = torch.randn(*lead, fin, generator=gen)
    got = SparseLinear(linear)(x)
    assert got.shape == (*lead, fout)
    assert (got - linear(x)).abs().max() <= 1e-4


class _Shared(nn.Module):
    """A 1x1 output used twice: fusing it with the depthwise conv would lose the second use."""

    def __init__(self) -> None:
        super().__init__()
        self.pw = nn.Conv2d(4, 6, 1)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.pw2 = nn.Conv2d(4, 6, 1)
        self.dw2 = nn.Conv2d(6, 6, 3, padding=1, groups=6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(x)
        return self.dw(y) + y + self.dw2(self.pw2(x))


def test_fuses_only_sole_consumers():
    model = _Shared().eval()
    sparse = sparsify(model, max_density=1.0)
    assert sparse.sparsify_report.fused == [("pw2", "dw2")]
    x = torch.randn(1, 4, 9, 11)
    with torch.no_grad():
        assert (sparse(x) - model(x)).abs().max() <= 1e-5


@settings(max_examples=25, deadline=None)
@given(
    cin=st.integers(1, 12),
    cout=st.integers(1, 12),
    h=st.integers(1, 30),
    w=st.integers(1, 12),
    density=st.floats(0.0, 1.0),
    pixels=st.integers(1, 200),
    bias=st.booleans(),
    layout=st.sampled_from(["csr", "strided"]),
    seed=st.integers(0, 2**16),
)
def test_point_depth_matches_two_convs(cin, cout, h, w, density, pixels, bias, layout, seed):
    gen = torch.Generator().manual_seed(seed)
    pw = nn.Conv2d(cin, cout, 1, bias=bias)
    dw = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=bias)
    with torch.no_grad():
        pw.weight.mul_(torch.rand(pw.weight.shape, generator=gen) < density)
    x = torch.randn(2, cin, h, w, generator=gen)
    got = PointDepth(BlockedConv1x1(pw, layout), dw, pixels=pixels)(x)  # bands of 4+ rows, ragged last band
    with torch.no_grad():
        assert (got - dw(pw(x))).abs().max() <= 1e-4
