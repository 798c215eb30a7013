"""Image I/O: every image becomes 3xHxW float RGB in [0, 1]; restored images go back to PNG/JPEG.

Decoding uses torchvision.io (EXIF orientation applied). BMP and TIFF, which torchvision cannot
decode (WED ships as BMP), go through Pillow, a torchvision dependency.

Conversions: grayscale is repeated to 3 channels; 16-bit images are scaled by 1/65535;
palette PNGs are expanded through their palette; alpha is composited over white, because the
colour under transparent pixels is undefined (often black or leftovers) and viewers show such
images over a light background.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_image, encode_jpeg, encode_png

from .errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
_PIL_EXTENSIONS = frozenset({".bmp", ".tif", ".tiff"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PALETTE = 3


@contextmanager
def quiet_codec_warnings() -> Iterator[None]:
    # torchvision 0.29 deprecates its codecs in favour of TorchCodec and warns on every call;
    # this module is the one place to migrate, so the warning need not repeat per image.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*image decoding and encoding capabilities", category=DeprecationWarning
        )
        yield


def is_image_file(path: str | Path) -> bool:
    """True when the file name has an image extension lotteryir reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path) -> torch.Tensor:
    """Decode an image file into a compact 3xHxW tensor: uint8, or float32 in [0, 1] for 16-bit sources.

    Datasets keep this compact form in memory (a quarter of float32) and convert per patch.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    if not data:
        raise DataError(f"cannot read image {path}: the file is empty (0 bytes)")
    try:
        if path.suffix.lower() in _PIL_EXTENSIONS:
            raw = _decode_with_pil(path)
        else:
            raw = _decode_with_torchvision(data, path.suffix.lower())
    except DataError:
        raise
    except Exception as exc:  # decoders raise RuntimeError/OSError/ValueError with C++ traces
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot decode image {path}: {first_line[:200]}") from exc
    return _to_rgb(raw, path)


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image as a 3xHxW float32 RGB tensor in [0, 1]."""
    return to_float(load_image(path))


def to_float(image: torch.Tensor) -> torch.Tensor:
    """Convert a compact image (uint8 or float) to float32 in [0, 1]."""
    if image.dtype == torch.uint8:
        return image.float().div_(255.0)
    return image.float()


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Round a [0, 1] float image to uint8 (values outside [0, 1] are clipped)."""
    if image.dtype == torch.uint8:
        return image
    return image.detach().float().clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)


def write_image(image: torch.Tensor, path: str | Path, quality: int = 95) -> Path:
    """Write a 3xHxW (or 1xHxW, or HxW) image in [0, 1] to PNG or JPEG, chosen by extension.

    The file is written to a temporary name and moved into place, so a crash never leaves a
    half-written image under the final name.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise DataError(f"cannot write {path}: expected a 3xHxW or 1xHxW image, got shape {tuple(image.shape)}")
    pixels = to_uint8(image.detach().cpu()).contiguous()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise DataError(f"cannot write {path}: unsupported extension {suffix!r} (use .png, .jpg or .jpeg)")
    if suffix != ".png" and not 1 <= quality <= 100:
        raise DataError(f"cannot write {path}: JPEG quality must be in 1..100, got {quality}")
    with quiet_codec_warnings():
        encoded = encode_png(pixels, compression_level=6) if suffix == ".png" else encode_jpeg(pixels, quality=quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(encoded.numpy().tobytes())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _decode_with_torchvision(data: bytes, suffix: str) -> torch.Tensor:
    buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    mode = ImageReadMode.UNCHANGED
    if data.startswith(_PNG_SIGNATURE) and len(data) > 25 and data[25] == _PNG_PALETTE:
        # UNCHANGED maps palette PNGs to gray; ask for the palette colours explicitly.
        mode = ImageReadMode.RGB_ALPHA if b"tRNS" in data else ImageReadMode.RGB
    elif suffix in (".jpg", ".jpeg"):
        mode = ImageReadMode.RGB  # also converts CMYK and grayscale JPEGs
    with quiet_codec_warnings():
        image = decode_image(buffer, mode=mode, apply_exif_orientation=True)
    if image.dim() == 4:  # animated GIF/WebP: the first frame
        image = image[0]
    return image


def _decode_with_pil(path: Path) -> torch.Tensor:
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        img: Image.Image = ImageOps.exif_transpose(opened)
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGB")
        array = np.array(img)
    if array.dtype in (np.int32, np.uint32, np.int16):  # 16-bit grayscale as 'I' / 'I;16'
        array = array.astype(np.uint16)
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"cannot decode image {path}: unsupported pixel type {array.dtype}")
    tensor = torch.from_numpy(array.astype(np.int32) if array.dtype == np.uint16 else array)
    tensor = tensor.unsqueeze(-1) if tensor.dim() == 2 else tensor
    tensor = tensor.permute(2, 0, 1).contiguous()
    return tensor.to(torch.uint16) if array.dtype == np.uint16 else tensor


def _to_rgb(raw: torch.Tensor, path: Path) -> torch.Tensor:
    if raw.dtype == torch.uint16:
        image = raw.to(torch.int32).float().div_(65535.0)
    elif raw.dtype == torch.uint8:
        image = raw
    else:
        raise DataError(f"cannot decode image {path}: unsupported pixel type {raw.dtype}")
    channels = image.shape[0]
    if channels in (2, 4):
        image = _composite_on_white(image[:-1], image[-1:])
        channels -= 1
    if channels == 1:
        image = image.expand(3, -1, -1)
    elif channels != 3:
        raise DataError(f"cannot decode image {path}: {channels} channels (expected 1 to 4)")
    return image.contiguous()


def _composite_on_white(color: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    if color.dtype == torch.uint8:
        a = alpha.float() / 255.0
        return (color.float() * a + 255.0 * (1.0 - a)).round_().to(torch.uint8)
    return color * alpha + (1.0 - alpha)
