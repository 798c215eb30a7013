"""pretrained_tickets' material (records, the held-out split, the smoke run's made-up files), summary, table, figure."""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
from pathlib import Path
from typing import Any

from harness import INPUT, ROOT, relative, save_figure, table
from harness import pyplot as _pyplot

GOAL_DB = 0.1  # a ticket at density <= 0.5 within this of the published figure on every test set
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in SUFFIXES)


def folder_record(folder: Path) -> dict[str, Any]:
    """A folder of images as a results file records it: relative path, count, pixels, a SHA-256 of its files."""
    from PIL import Image

    files, digest, pixels = images(folder), hashlib.sha256(), 0
    for f in files:
        digest.update(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n".encode())
        with Image.open(f) as im:
            pixels += im.size[0] * im.size[1]
    # The digest is `sha256sum *` of the folder, hashed again: `cd DIR && sha256sum * | sha256sum` reproduces it.
    return {"path": relative(Path(folder)), "images": len(files), "pixels": pixels, "sha256": digest.hexdigest()}


def split_training(train: Path, where: Path, held_out: int) -> dict[str, Any]:
    """The training folder as two folders of links: ``held_out`` images spread evenly over it, and the rest."""
    files = images(train)
    if not 0 < held_out < len(files):
        raise ValueError(f"--validation {held_out}: the training folder has {len(files)} images")
    picked = {round(i * len(files) / held_out) for i in range(held_out)}
    out = {"train": where / "train", "val": where / "val"}
    for part in out.values():
        part.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        link = out["val" if i in picked else "train"] / f.name
        if not link.is_symlink():
            os.symlink(f.resolve(), link)
    return out


def has(tree: dict[str, Any], key: tuple[str, ...]) -> bool:
    for k in key:
        if not isinstance(tree, dict) or k not in tree:
            return False
        tree = tree[k]
    return True


def chosen_scope(report: dict[str, Any]) -> str:
    """The scope whose pruned networks score higher on the held-out training images (mean over densities)."""
    val = report["results"]["validation"]
    means = {s: statistics.fmean(_last(val[s][d]) for d in val[s]) for s in val}
    return max(sorted(means), key=lambda s: means[s])


def chosen_lr(report: dict[str, Any]) -> float:
    """The learning rate whose fine-tuned ticket scores highest on the held-out training images."""
    val = report["results"]["validation-lr"]
    return float(max(sorted(val), key=lambda lr: _last(val[lr])))


def _last(cell: dict[str, Any]) -> float:
    return statistics.fmean(cell["rounds"][-1]["psnr"].values())


def _short(label: str) -> str:
    return label.split("/", 1)[-1]


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    res, c = report["results"], report["config"]
    published = c["published"]
    out: dict[str, Any] = {"published": published}
    if "dense" in res:
        r0 = res["dense"]["rounds"][0]
        dense = {_short(k): v for k, v in r0["psnr"].items()}
        out["input"] = {_short(k): v for k, v in r0["input_psnr"].items()}
        out["dense"] = dense
        out["dense_minus_published"] = {k: dense[k] - published[k] for k in dense if k in published}
    if "dense-uint8" in res:
        r0 = res["dense-uint8"]["rounds"][0]
        out["dense_uint8"] = {_short(k): v for k, v in r0["psnr"].items()}
        out["input_uint8"] = {_short(k): v for k, v in r0["input_psnr"].items()}
        if "dense" in out:
            out["float_minus_uint8"] = {k: out["dense"][k] - v for k, v in out["dense_uint8"].items()}
    if has(res, ("validation",)) and all(has(res, ("validation", s)) for s in ("global", "layerwise")):
        val = res["validation"]
        out["scope"] = {s: {d: _last(val[s][d]) for d in val[s]} for s in val}
        if all(len(v) == 2 for v in out["scope"].values()):
            out["scope"]["chosen"] = chosen_scope(report)
    if "validation-lr" in res:
        out["lr"] = {lr: _last(cell) for lr, cell in res["validation-lr"].items()}
        if len(out["lr"]) == len(c["lrs"]):
            out["lr"]["chosen"] = chosen_lr(report)
    tickets: dict[str, Any] = {}
    for route, cells in res.items():
        if route in ("dense", "dense-uint8", "validation", "validation-lr", "final"):
            continue
        for d, cell in cells.items():
            last = cell["rounds"][-1]
            row = {"density": last["density"], "screen": {_short(k): v for k, v in last["psnr"].items()}}
            row.update(steps=last["steps"], train_minutes=last["train_seconds"] / 60)
            if has(res, ("final", route, d)):
                row["final"] = {_short(k): v["psnr"] for k, v in res["final"][route][d]["sets"].items()}
            tickets.setdefault(route, {})[d] = row
    out["tickets"] = tickets
    met = [
        f"{route}/{d}"
        for route, cells in tickets.items()
        for d, row in cells.items()
        if row["density"] <= 0.5 + 1e-6
        and "final" in row
        and all(row["final"].get(k, -1e9) >= v - GOAL_DB for k, v in published.items() if k in row["final"])
    ]
    out["goal"] = {"rule": f"a ticket at density <= 0.5 within {GOAL_DB} dB of every published figure", "met_by": met}
    return out


def markdown(report: dict[str, Any], a: argparse.Namespace) -> str:
    s, c = report["summary"], report["config"]
    sets = list(s.get("dense") or c["published"])
    m = c["material"]
    lines = [
        f"## A published network's tickets: {c['model']} from {m['weights']['path']} (SHA-256 "
        f"{m['weights']['sha256'][:12]}...), sigma {c['sigma']}, float noise protocol",
        "",
        f"Weights: {m['weights']['source']}. Test sets: "
        + ", ".join(f"{k} ({v['images']} images, {v['path']})" for k, v in m["test"].items())
        + f". Training: {m['train']['images']} images of {m['train']['path']}, {c['validation']} held out to "
        f"choose the scope and the learning rate. Fine-tuning: {c['steps']} steps a training, batch {c['batch']}, "
        f"patch {c['patch']}, {c['loss']} loss. PSNR in dB.",
        "",
    ]
    rows = [["noisy input", *(f"{s['input'][k]:.2f}" for k in sets)]] if "input" in s else []
    rows.append(["published", *(f"{c['published'][k]:.2f}" if k in c["published"] else "" for k in sets)])
    if "dense" in s:
        rows.append(["dense, through lotteryir", *(f"{s['dense'][k]:.2f}" for k in sets)])
        rows.append(["dense - published", *(f"{s['dense_minus_published'].get(k, float('nan')):+.2f}" for k in sets)])
    if "dense_uint8" in s:
        rows.append(["noisy input, uint8 protocol", *(f"{s['input_uint8'][k]:.2f}" for k in sets)])
        rows.append(["dense, uint8 protocol (PromptIR's)", *(f"{s['dense_uint8'][k]:.2f}" for k in sets)])
        if "float_minus_uint8" in s:
            rows.append(["float - uint8 protocol", *(f"{s['float_minus_uint8'][k]:+.2f}" for k in sets)])
    lines += table(["network", *sets], rows)
    if "scope" in s and "chosen" in s["scope"]:
        scope = s["scope"]
        said = "; ".join(f"{k}: " + ", ".join(f"{v:.2f} at {d}" for d, v in scope[k].items()) for k in SCOPE_ORDER)
        lines += ["", f"Scope, chosen on the held-out training images (no retraining, BatchNorm recalibrated): {said} "
                      f"-> **{scope['chosen']}**."]  # fmt: skip
    if "lr" in s and "chosen" in s["lr"]:
        said = ", ".join(f"{v:.2f} at lr {k}" for k, v in s["lr"].items() if k != "chosen")
        lines += ["", f"Learning rate, chosen on the held-out training images (oneshot at 0.5, fine-tuned): {said} "
                      f"-> **{s['lr']['chosen']:g}**."]  # fmt: skip
    screen = sets[0] if sets else ""
    rows = []
    for route, cells in s.get("tickets", {}).items():
        for _, row in sorted(cells.items(), reverse=True):
            final = [f"{row['final'][k]:.2f}" if "final" in row else "" for k in sets]
            gap = row["screen"].get(screen, float("nan")) - (s.get("dense") or {}).get(screen, float("nan"))
            rows.append([route, f"{row['density']:.3f}", f"{row['screen'].get(screen, float('nan')):.2f}",
                         f"{gap:+.2f}", row["steps"], f"{row['train_minutes']:.1f}", *final])  # fmt: skip
    lines += ["", *table(["route", "density", screen, "vs dense", "steps", "train min", *(f"final {k}" for k in sets)],
                         rows)]  # fmt: skip
    met = s["goal"]["met_by"]
    lines += ["", f"**Goal** ({s['goal']['rule']}): " + (f"met by {', '.join(met)}." if met else "not met.")]
    return "\n".join(lines) + "\n"


SCOPE_ORDER = ("global", "layerwise")


def figure(report: dict[str, Any], a: argparse.Namespace, path: Path) -> None:
    s = report["summary"]
    if not s.get("tickets") or "dense" not in s:
        return
    plt = _pyplot()
    screen = next(iter(s["dense"]))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for route, cells in s["tickets"].items():
        pts = sorted((row["density"], row["screen"][screen]) for row in cells.values())
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=route)
    ax.axhline(s["dense"][screen], color="black", ls="--", lw=1, label="dense (lotteryir)")
    if screen in s["published"]:
        ax.axhline(s["published"][screen], color="tab:green", ls="-.", lw=1, label="published")
    ax.axhline(s["input"][screen], **INPUT)
    ax.set_xlabel("density (fraction of weights left)")
    ax.set_ylabel(f"PSNR on {screen} (dB)")
    ax.set_xscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def smoke_material(a: argparse.Namespace) -> None:
    """The smoke run's material beside --out: a tiny DnCNN's weights and small gray images from scikit-image."""
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    from skimage import data

    root = a.out.parent / f"{a.out.stem}_material"  # --work is decided after the presets
    camera = data.camera()  # 512 x 512, 8-bit gray
    for part, count, side in (("train", 6, 24), ("S1", 2, 20), ("S2", 2, 28)):
        (root / part).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            y, x = 40 + 60 * i, 30 + 50 * i + len(part) * 7
            Image.fromarray(np.ascontiguousarray(camera[y : y + side, x : x + side])).save(root / part / f"{i}.png")
    from lotteryir.models import build_model, register_import_path

    a.model = f"{ROOT / 'benchmarks' / 'real' / 'dncnn.py'}:dncnn_tiny"
    torch.manual_seed(0)
    save_file(build_model(register_import_path(a.model)).state_dict(), str(root / "tiny.safetensors"))
    a.weights, a.train = root / "tiny.safetensors", root / "train"
    a.test, a.published, a.source = [f"S1={root / 'S1'}", f"S2={root / 'S2'}"], "S1=20.0,S2=20.0", "made up (smoke)"
    a.steps, a.batch, a.patch, a.recalibrate, a.validation, a.lrs = 2, 2, 16, 1, 2, "1e-3,1e-5"
