"""ONNX export: any restorer -> one .onnx file with dynamic height/width and sparse initializers.

The exported graph takes ``image`` (N x C x H x W, float32) and returns ``restored`` of the
same shape. The network's reflect padding to its ``multiple`` is part of the graph, so
every H, W >= the multiple works (reflection needs a side longer than the pad).

Pruned weights become ONNX sparse initializers: values plus linear indices. The ONNX
checker insists on int64 indices (12 bytes per survivor); onnxruntime also loads int8,
int16 and int32 indices, which is what ``indices="compact"`` (the default) writes: the
narrowest of those that holds the tensor's largest position. onnxruntime turns sparse
initializers back into dense ones when it loads the model, so inference is unchanged.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.channels import input_channels
from ..pruning import atomic_write
from .plain import plain_copy

OPSET = 17
INPUT, OUTPUT = "image", "restored"
Indices = Literal["compact", "int64"]


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`to_onnx` wrote: the file, its size, and how its weights are stored."""

    path: Path
    bytes: int
    dense_bytes: int  # the same graph with every initializer stored densely
    sparse_tensors: int  # initializers stored as sparse
    weights: int  # float weights in the graph (all initializers' elements)
    nonzero: int  # of those, non-zero
    opset: int
    metadata: dict[str, str]


class _PadCrop(nn.Module):
    """Reflect-pad to ``multiple``, run the network, crop back: with amounts the graph computes from the input."""

    def __init__(self, net: nn.Module, multiple: int) -> None:
        super().__init__()
        self.net, self.multiple = net, multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        if self.multiple == 1:
            return self.net(x)
        # Always pad (by 0 when divisible): a Python branch on the size would be frozen into the graph.
        pad_h = (self.multiple - h % self.multiple) % self.multiple
        pad_w = (self.multiple - w % self.multiple) % self.multiple
        return self.net(F.pad(x, (0, pad_w, 0, pad_h), mode="reflect"))[..., :h, :w]


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as e:
        raise ImportError(f"{module} is needed for ONNX export and checks: pip install 'lotteryir[deploy]'") from e


def to_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    sparse: bool = True,
    indices: Indices = "compact",
    opset: int = OPSET,
    channels: int | None = None,
    metadata: Mapping[str, object] | None = None,
    overwrite: bool = True,
) -> OnnxExport:
    """Export ``model`` (N x C x H x W -> same shape) to ``path`` as ONNX with dynamic N, H and W.

    ``sparse`` stores initializers as sparse tensors wherever that is smaller (pruned
    weights); ``indices="int64"`` writes the index type the ONNX checker requires,
    "compact" the narrowest one onnxruntime loads. ``metadata`` goes into the file's
    metadata_props. The model is copied: masks attached with torch.nn.utils.prune are
    made permanent in the copy, the original is untouched. Without ``overwrite`` an
    existing ``path`` is never replaced, even one created meanwhile (FileExistsError).
    ``channels`` (C) defaults to the network's input channels (models.channels.input_channels);
    it is written to the metadata as ``channels``.
    """
    onnx = _require("onnx")
    if indices not in ("compact", "int64"):
        raise ValueError(f"indices must be 'compact' or 'int64', got {indices!r}")
    net = plain_copy(model)
    multiple = int(getattr(model, "multiple", 1))
    channels = channels or input_channels(net)
    side = max(multiple, 8) * 4
    example = torch.rand(1, channels, side, side)
    buf = io.BytesIO()
    dims = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript exporter announces its deprecation and warns about the shape arithmetic
        # it records; both are expected. It is chosen over the dynamo exporter because it gives
        # the same graph (outputs equal to 1e-6) at opset 17 in ~7 s for the full MIR-L, not ~100 s.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _PadCrop(net, multiple).eval(),
            (example,),
            buf,  # type: ignore[arg-type]  # a file object is accepted and documented
            opset_version=opset,
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: dims, OUTPUT: dims},
        )
    proto = onnx.load_from_string(buf.getvalue())
    dense_bytes = len(buf.getvalue())
    stats = sparsify_initializers(proto, indices) if sparse else _count(proto)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.setdefault("multiple", str(multiple))
    meta.setdefault("channels", str(channels))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()
    path = Path(path)

    def write(p: Path) -> None:
        p.write_bytes(data)

    atomic_write(path, write, overwrite=overwrite)
    return OnnxExport(path, len(data), dense_bytes, stats[0], stats[1], stats[2], opset, meta)


def _index_dtype(largest: int, indices: Indices) -> np.dtype:
    if indices == "int64":
        return np.dtype(np.int64)
    for dt in (np.int8, np.int16, np.int32):
        if largest <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def sparsify_initializers(proto, indices: Indices = "compact") -> tuple[int, int, int]:
    """Move every float32 initializer that is smaller stored sparse into ``sparse_initializer``, in place.

    Returns (tensors made sparse, float weights, non-zero weights).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    keep, made, weights, nonzero = [], 0, 0, 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            keep.append(init)
            continue
        array = numpy_helper.to_array(init)
        flat = array.reshape(-1)
        positions = np.flatnonzero(flat)
        weights += flat.size
        nonzero += positions.size
        idx_dtype = _index_dtype(flat.size - 1, indices)
        if flat.size < 2 or positions.size * (4 + idx_dtype.itemsize) >= flat.size * 4:
            keep.append(init)
            continue
        values = numpy_helper.from_array(flat[positions].astype(np.float32), init.name)
        index = numpy_helper.from_array(positions.astype(idx_dtype), init.name + "::indices")
        graph.sparse_initializer.append(helper.make_sparse_tensor(values, index, list(array.shape)))
        made += 1
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return made, weights, nonzero


def _count(proto) -> tuple[int, int, int]:
    from onnx import TensorProto, numpy_helper

    arrays = [numpy_helper.to_array(i) for i in proto.graph.initializer if i.data_type == TensorProto.FLOAT]
    return 0, sum(a.size for a in arrays), sum(int(np.count_nonzero(a)) for a in arrays)


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session for ``path`` (sparse initializers are densified as it loads)."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: ORT warns about initializers it keeps as inputs
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    sizes: Sequence[tuple[int, int]] = ((64, 64), (37, 53), (96, 72)),
    *,
    seed: int = 0,
    channels: int | None = None,
) -> dict[str, float]:
    """Max |onnxruntime - torch| of ``model`` and its export at ``path``, per image size ("HxW")."""
    net = plain_copy(model)
    channels = channels or input_channels(net)
    session = onnx_session(path)
    gen = torch.Generator().manual_seed(seed)
    diffs: dict[str, float] = {}
    for h, w in sizes:
        x = torch.rand(1, channels, h, w, generator=gen)
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
        if got.shape != expected.shape:
            raise ValueError(f"{path}: onnxruntime output {got.shape} != torch output {expected.shape} at {h}x{w}")
        diffs[f"{h}x{w}"] = float(np.abs(got - expected).max())
    return diffs


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata_props of an ONNX file (lotteryir writes model, size, density there)."""
    onnx = _require("onnx")
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
