"""Convert a MatConvNet DnCNN (a MATLAB v7.3 ``.mat`` with ``net.layers``) to a safetensors state dict.

Made for cszn/DnCNN's ``utilities/sigma=25_Bnorm.mat`` (the paper's DnCNN-S for sigma 25 with its
BatchNorm layers) and its BatchNorm-free ``model/specifics/sigma=*.mat``. The layer list decides the
layout: with ``bnorm`` layers the keys are those of ``dncnn.dncnn_paper_bn``, without them those of
``dncnn.dncnn`` (KAIR's). The result is loaded strictly into that network before it is written.

MatConvNet conventions this relies on (each is checked by ``--compare-merged`` below, which folds the
converted BatchNorm into the convolutions as cszn/DnCNN's ``vl_simplenn_mergebnorm.m`` does and
compares with a folded file such as KAIR's ``dncnn_25.pth``):
- a filter is H x W x C_in x C_out in MATLAB; HDF5 stores the dimensions reversed, a trailing singleton
  C_out is dropped; torch wants C_out x C_in x H x W, with no flip (both compute a cross-correlation);
- a bnorm layer's weights are {gain, bias, moments}; moments is C x 2, [mean, sqrt(var + eps)], so
  torch's ``running_var`` is moments[:, 1]**2 - torch's eps.

Needs h5py, which is not a lotteryir dependency (use any environment that has it and torch):
    python benchmarks/real/convert_dncnn_mat.py SRC.mat OUT.safetensors [--compare-merged dncnn_25.pth]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dncnn import DnCNN, dncnn, dncnn_paper_bn  # noqa: E402


def read_layers(path: Path) -> list[dict[str, object]]:
    """``net.layers`` as a list of {"type", "name", "weights": [numpy arrays in MATLAB dimension order]}."""
    try:
        import h5py
    except ImportError as e:
        raise SystemExit("this converter needs h5py (pip install h5py); lotteryir itself does not") from e
    layers = []
    with h5py.File(path, "r") as f:
        for ref in np.asarray(f["net"]["layers"]).ravel():
            g = f[ref]
            weights = [np.asarray(f[w]).T for w in np.asarray(g["weights"]).ravel()] if "weights" in g else []
            layers.append({"type": _text(g["type"]), "name": _text(g["name"]), "weights": weights})
    return layers


def _text(dataset: object) -> str:
    return "".join(map(chr, np.asarray(dataset).ravel()))


def state_dict(layers: list[dict[str, object]]) -> tuple[dict[str, torch.Tensor], bool]:
    """The torch state dict (keys of ``dncnn_paper_bn`` or ``dncnn``) and whether it has BatchNorm."""
    layers = [layer for layer in layers if layer["type"] != "loss"]
    has_bn = any(layer["type"] == "bnorm" for layer in layers)
    eps = torch.nn.BatchNorm2d(1).eps
    out: dict[str, torch.Tensor] = {}
    convs = [i for i, layer in enumerate(layers) if layer["type"] == "conv"]
    for i, layer in enumerate(layers):
        w = layer["weights"]
        assert isinstance(w, list)
        if layer["type"] == "conv":
            filt = w[0] if w[0].ndim == 4 else w[0][..., None]  # MATLAB drops a trailing C_out of 1
            out[f"model.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(filt.transpose(3, 2, 0, 1)))
            bias = torch.from_numpy(np.ascontiguousarray(w[1].ravel()))
            end = i in (convs[0], convs[-1])
            if has_bn and not end:
                if bias.abs().max() != 0:
                    raise SystemExit(f"layer {layer['name']}: a middle convolution has a non-zero bias; no layout fits")
                continue
            out[f"model.{i}.bias"] = bias
        elif layer["type"] == "bnorm":
            moments = torch.from_numpy(np.ascontiguousarray(w[2])).double()
            out[f"model.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(w[0].ravel()))
            out[f"model.{i}.bias"] = torch.from_numpy(np.ascontiguousarray(w[1].ravel()))
            out[f"model.{i}.running_mean"] = moments[:, 0].float()
            out[f"model.{i}.running_var"] = (moments[:, 1] ** 2 - eps).float()
            out[f"model.{i}.num_batches_tracked"] = torch.tensor(0)
        elif layer["type"] != "relu":
            raise SystemExit(f"layer {layer['name']}: type {layer['type']!r} is not part of DnCNN")
    return out, has_bn


def fold_batchnorm(net: DnCNN) -> dict[str, torch.Tensor]:
    """The state dict of ``dncnn()`` equivalent to ``net`` (each BatchNorm folded into its convolution), float64."""
    body = net.get_submodule(net.body_name)
    folded: dict[str, torch.Tensor] = {}
    modules = list(body)
    for i, m in enumerate(modules):
        if not isinstance(m, torch.nn.Conv2d):
            continue
        w = m.weight.detach().double()
        b = m.bias.detach().double() if m.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        bn = modules[i + 1] if i + 1 < len(modules) else None
        if isinstance(bn, torch.nn.BatchNorm2d):
            scale = bn.weight.detach().double() / (bn.running_var.double() + bn.eps).sqrt()
            w = w * scale[:, None, None, None]
            b = bn.bias.detach().double() + (b - bn.running_mean.double()) * scale
        folded[f"model.{i}"] = w, b  # type: ignore[assignment]
    # Renumber as the BatchNorm-free stack: conv k sits at index 2k there.
    return {
        f"model.{2 * k}.{part}": t
        for k, (w, b) in enumerate(folded.values())  # type: ignore[misc]
        for part, t in (("weight", w), ("bias", b))
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--compare-merged", type=Path, default=None, help="a BatchNorm-folded torch state dict")
    args = p.parse_args()
    state, has_bn = state_dict(read_layers(args.source))
    convs = [v for k, v in state.items() if k.endswith(".weight") and v.dim() == 4]
    shape = {"channels": convs[0].shape[1], "depth": len(convs), "features": convs[0].shape[0]}
    net = dncnn_paper_bn(**shape) if has_bn else dncnn(**shape)
    net.load_state_dict(state, strict=True)
    source_sha = hashlib.sha256(args.source.read_bytes()).hexdigest()
    meta = {
        "source": args.source.name,
        "source_sha256": source_sha,
        "converter": "benchmarks/real/convert_dncnn_mat.py",
    }
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(args.out), metadata=meta)
    print(f"{args.source.name} (sha256 {source_sha}) -> {args.out} ({'with' if has_bn else 'no'} BatchNorm, {shape})")
    print(f"wrote sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    if args.compare_merged is not None:
        ref = torch.load(args.compare_merged, map_location="cpu", weights_only=True)
        mine = fold_batchnorm(net)
        if set(mine) != set(ref):
            raise SystemExit(f"key sets differ: {sorted(set(mine) ^ set(ref))[:6]}")
        worst = max(float((mine[k] - ref[k].double()).abs().max() / ref[k].double().abs().max()) for k in ref)
        print(f"folded vs {args.compare_merged.name}: largest difference {worst:.2e} of a tensor's largest value")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
