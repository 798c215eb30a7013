"""Peak memory of tiled inference versus image size, and what tiling costs in PSNR.

Each image size is restored in a fresh subprocess (peak RSS is per process), by
the MIR-L network (default size "small") on CPU with the same tile size. The
claim checked: peak RSS at 2048x2048 is at most 1.2x the peak at 512x512. Then,
on a 512x512 photo with sigma-25 noise that fits untiled, the tiled output is
compared with the untiled one.

    python benchmarks/tile_memory.py [--tile 256 --overlap 32 --size small --out result.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from harness import Sitting, provenance


def _model(size: str, weights: str | None) -> torch.nn.Module:
    from lotteryir.models import build_model

    torch.manual_seed(0)
    model = build_model("mirl", size).eval()
    if weights:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(weights))
    return model


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(side: int, args: argparse.Namespace) -> dict:
    """Restore one side x side image tiled in this process; report peak RSS."""
    from lotteryir.engine import restore_image

    torch.set_num_threads(args.threads)
    model = _model(args.size, args.weights)
    # A smooth image (upsampled noise): content does not change memory, only time.
    image = torch.nn.functional.interpolate(
        torch.rand(1, 3, side // 64, side // 64), size=(side, side), mode="bilinear"
    )
    before = _peak_mib()
    start = time.perf_counter()
    out = restore_image(model, image, tile=args.tile, overlap=args.overlap)
    return {
        "side": side,
        "peak_rss_mib": _peak_mib(),
        "rss_before_inference_mib": before,
        "seconds": time.perf_counter() - start,
        "finite": bool(torch.isfinite(out).all()),
    }


def tiling_fidelity(args: argparse.Namespace) -> dict:
    """PSNR of tiled vs untiled output on a 512x512 noisy photo, and of both vs the clean photo."""
    import skimage.data

    from lotteryir.engine import psnr, restore_image

    torch.set_num_threads(args.threads)
    model = _model(args.size, args.weights)
    clean = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1).float().div(255)[None]
    noisy = (clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    whole = restore_image(model, noisy).clamp(0, 1)
    tiled = restore_image(model, noisy, tile=args.tile, overlap=args.overlap).clamp(0, 1)
    return {
        "psnr_tiled_vs_untiled_db": float(psnr(tiled, whole)),
        "psnr_untiled_vs_clean_db": float(psnr(whole, clean)),
        "psnr_tiled_vs_clean_db": float(psnr(tiled, clean)),
        "max_abs_diff": float((tiled - whole).abs().max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--size", default="small", help="MIR-L size: tiny, small or full")
    parser.add_argument("--weights", default=None, help="optional safetensors state dict (default: seeded random init)")
    parser.add_argument("--sides", type=int, nargs=2, default=[512, 2048])
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads (1 keeps timings stable on a shared machine)"
    )
    parser.add_argument("--skip-fidelity", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--fidelity-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:
        print(json.dumps(child(args.child, args)))
        return
    if args.fidelity_child:
        print(json.dumps(tiling_fidelity(args)))
        return

    sitting = Sitting()
    forward = [a for a in sys.argv[1:] if a != "--skip-fidelity"]
    forward = [a for i, a in enumerate(forward) if a != "--out" and (i == 0 or forward[i - 1] != "--out")]

    def run(*extra: str) -> dict:
        proc = subprocess.run([sys.executable, __file__, *forward, *extra], capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    small_side, large_side = args.sides
    runs = [run("--child", str(side)) for side in (small_side, large_side)]
    ratio = runs[1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
    result = {
        "model": f"mirl/{args.size}",
        "tile": args.tile,
        "overlap": args.overlap,
        "threads": args.threads,
        "runs": runs,
        "peak_ratio": ratio,
        "target_ratio": 1.2,
        "passes": ratio <= 1.2,
    }
    print(f"MIR-L {args.size}, CPU, tile {args.tile}, overlap {args.overlap}, {args.threads} threads")
    print(f"{'image':>11} {'peak RSS MiB':>13} {'before MiB':>11} {'seconds':>8}")
    for r in runs:
        print(
            f"{r['side']:>5}x{r['side']:<5} {r['peak_rss_mib']:>13.0f} {r['rss_before_inference_mib']:>11.0f} "
            f"{r['seconds']:>8.1f}"
        )
    print(
        f"peak ratio {large_side}/{small_side}: {ratio:.3f} (target <= 1.2: {'pass' if result['passes'] else 'FAIL'})"
    )
    if not args.skip_fidelity:
        fid = run("--fidelity-child")
        result["fidelity"] = fid
        print(
            f"512x512 astronaut, sigma 25: PSNR tiled vs untiled {fid['psnr_tiled_vs_untiled_db']:.2f} dB; "
            f"vs clean: untiled {fid['psnr_untiled_vs_clean_db']:.3f} dB, tiled {fid['psnr_tiled_vs_clean_db']:.3f} dB "
            f"(difference {abs(fid['psnr_untiled_vs_clean_db'] - fid['psnr_tiled_vs_clean_db']):.3f} dB)"
        )
    if args.out is not None:
        result["provenance"] = provenance(sitting, threads=args.threads)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
