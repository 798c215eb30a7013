"""ONNX export: the graph matches torch at any size, pruned weights are stored sparse, the file is small."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lotteryir.deploy import compare_onnx, onnx_session, read_onnx_metadata, to_onnx
from lotteryir.pruning import attach_masks, find_prunable

from .helpers import pruned

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SIZES = ((64, 64), (37, 53), (96, 72))  # divisible, odd on both sides, rectangular


@pytest.mark.parametrize("name", ["mirl", "restormer"])
@pytest.mark.parametrize(
    "size, rounds", [("tiny", 0), ("tiny", 10), ("small", 10)], ids=["tiny-dense", "tiny-pruned", "small-pruned"]
)
def test_onnxruntime_matches_torch(tmp_path, name, size, rounds):
    model = pruned(name, size, rounds)
    done = to_onnx(model, tmp_path / "m.onnx")
    diffs = compare_onnx(model, done.path, SIZES)
    x = torch.rand(1, 3, 40, 40)  # an identity network would pass the comparison; this one changes its input
    assert np.abs(onnx_session(done.path).run(None, {"image": x.numpy()})[0] - x.numpy()).max() > 1e-3
    assert set(diffs) == {f"{h}x{w}" for h, w in SIZES}
    assert max(diffs.values()) <= 1e-4, diffs
    proto = onnx.load(str(done.path))
    assert proto.opset_import[0].version >= 17
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    if rounds:
        assert done.sparse_tensors > 0 and len(proto.graph.sparse_initializer) == done.sparse_tensors
    else:
        # Only all-zero tensors (fresh layer-norm biases) go sparse in a dense network.
        assert done.nonzero / done.weights > 0.99 and done.bytes <= done.dense_bytes


def test_pruned_file_is_a_third_of_dense(tmp_path):
    model = pruned("restormer", "small", rounds=10)  # density 0.107 in every layer
    sparse = to_onnx(model, tmp_path / "sparse.onnx")
    dense = to_onnx(pruned("restormer", "tiny", rounds=10), tmp_path / "dense.onnx", sparse=False)
    assert dense.sparse_tensors == 0 and dense.bytes == pytest.approx(dense.dense_bytes, rel=1e-3)
    assert sparse.bytes == (tmp_path / "sparse.onnx").stat().st_size
    assert sparse.bytes <= 0.35 * sparse.dense_bytes, (sparse.bytes, sparse.dense_bytes)
    assert sparse.nonzero / sparse.weights < 0.2


def test_index_widths(tmp_path):
    model = pruned("mirl", "tiny", rounds=10)
    compact = to_onnx(model, tmp_path / "compact.onnx")
    strict = to_onnx(model, tmp_path / "strict.onnx", indices="int64")
    onnx.checker.check_model(str(strict.path))  # the checker's rule: int64 indices
    kinds = {t.indices.data_type for t in onnx.load(str(compact.path)).graph.sparse_initializer}
    assert onnx.TensorProto.INT64 not in kinds and kinds <= {
        onnx.TensorProto.INT8,
        onnx.TensorProto.INT16,
        onnx.TensorProto.INT32,
    }
    assert compact.bytes < strict.bytes
    x = np.random.default_rng(0).random((1, 3, 24, 32), dtype=np.float32)
    a = onnx_session(compact.path).run(None, {"image": x})[0]
    b = onnx_session(strict.path).run(None, {"image": x})[0]
    assert np.array_equal(a, b)


def test_masks_attached_are_applied_and_the_model_is_untouched(tmp_path):
    plain = pruned("mirl", "tiny", rounds=5)
    masked = pruned("mirl", "tiny", rounds=0)
    with torch.no_grad():  # the same weights, the pruning expressed as masks instead of zeros
        masked.load_state_dict(plain.state_dict())
    masks = {p.name: p.module.weight != 0 for p in find_prunable(plain)}
    from lotteryir.pruning import Mask

    attach_masks(masked, Mask(masks))
    done = to_onnx(masked, tmp_path / "m.onnx")
    assert any(hasattr(m, "weight_orig") for m in masked.modules())  # still masked
    assert max(compare_onnx(plain, done.path, ((32, 40),)).values()) <= 1e-4
    assert done.sparse_tensors > 0


def test_metadata_and_errors(tmp_path):
    model = pruned("mirl", "tiny", rounds=0)
    done = to_onnx(model, tmp_path / "m.onnx", metadata={"lotteryir_model": "mirl/tiny", "density": 1.0})
    meta = read_onnx_metadata(done.path)
    assert meta["lotteryir_model"] == "mirl/tiny" and meta["density"] == "1.0" and meta["multiple"] == "8"
    with pytest.raises(ValueError, match="indices"):
        to_onnx(model, tmp_path / "x.onnx", indices="int16")
    with pytest.raises(ValueError, match="input channels"):
        to_onnx(torch.nn.Sequential(torch.nn.ReLU()), tmp_path / "y.onnx")
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = pruned("mirl", "tiny", rounds=10)
    return model, onnx_session(to_onnx(model, tmp_path_factory.mktemp("onnx") / "m.onnx").path)


@settings(max_examples=12, deadline=None)
@given(h=st.integers(8, 70), w=st.integers(8, 70), batch=st.integers(1, 2))
def test_any_size_and_batch(exported, h, w, batch):
    model, session = exported
    x = torch.rand(batch, 3, h, w)
    with torch.no_grad():
        expected = model(x).numpy()
    got = session.run(None, {"image": x.numpy()})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4
