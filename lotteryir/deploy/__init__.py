"""What a ticket becomes after the search: ONNX export, sparse CPU inference, the browser page.

``to_onnx`` and ``compare_onnx`` need the ``deploy`` extra (onnx, onnxruntime):
``pip install 'lotteryir[deploy]'``. ``sparsify`` needs only torch. ``build_site`` writes the browser page,
``serve_site`` serves it.
"""

from __future__ import annotations

from .onnx_export import OnnxExport, compare_onnx, onnx_session, read_onnx_metadata, to_onnx
from .plain import plain_copy
from .sparse import BlockedConv1x1, PointDepth, SparseLinear, SparsifyReport, sparsify
from .web import DEFAULT_RUNTIME, RUNTIME_FILES, Site, build_site, serve_site

__all__ = [
    "DEFAULT_RUNTIME",
    "RUNTIME_FILES",
    "BlockedConv1x1",
    "OnnxExport",
    "PointDepth",
    "SparseLinear",
    "Site",
    "SparsifyReport",
    "build_site",
    "compare_onnx",
    "onnx_session",
    "plain_copy",
    "read_onnx_metadata",
    "serve_site",
    "sparsify",
    "to_onnx",
]
