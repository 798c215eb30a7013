"""Image I/O: every image becomes CxHxW float in [0, 1], RGB (C=3) or grayscale (C=1); results go back to PNG/JPEG.

Decoding and encoding use Pillow (a torchvision dependency; EXIF orientation applied). Pillow loads
in milliseconds, where ``torchvision.io`` imports torchvision's models and ``torch._dynamo`` (seconds
and hundreds of MB for every command that touches this module). Pillow decodes and encodes JPEG with
the same libjpeg-turbo settings as torchvision.io (same bytes, same pixels; checked in the tests), so
results made with the torchvision reader stay reproducible. One exception: 16-bit colour PNGs, which
Pillow reduces to 8 bits, go through ``torchvision.io``, imported only when such a file is read.

Conversions: grayscale is repeated to 3 channels for an RGB reader; a colour image read as grayscale
(``channels=1``, for a 1-channel network) becomes its ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B,
computed as Pillow's ``convert("L")`` computes it (see :func:`to_grayscale`); a grayscale file is read as it
is. 16-bit images are scaled by 1/65535; palette PNGs are expanded through their palette; alpha is
composited over white, because the colour under transparent pixels is undefined (often black or
leftovers) and viewers show such images over a light background.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import DataError
from .options import CHANNELS

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_WITH_16_BITS = (2, 4, 6)  # IHDR colour types RGB, gray+alpha, RGBA (Pillow keeps 8 of 16 bits)
_ENCODERS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


@contextmanager
def quiet_codec_warnings() -> Iterator[None]:
    # torchvision 0.29 deprecates its codecs in favour of TorchCodec and warns on every call;
    # only the 16-bit colour PNG path still uses them.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*image decoding and encoding capabilities", category=DeprecationWarning
        )
        yield


def is_image_file(path: str | Path) -> bool:
    """True when the file name has an image extension lotteryir reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """Decode an image file into a compact CxHxW tensor: uint8, or float32 in [0, 1] for 16-bit sources.

    ``channels`` is 3 (RGB) or 1 (grayscale: a colour file becomes its luma). Datasets keep this compact
    form in memory (a quarter of float32) and convert per patch.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    if not data:
        raise DataError(f"cannot read image {path}: the file is empty (0 bytes)")
    return decode_image(data, path, channels)


def decode_image(data: bytes, path: str | Path = "<bytes>", channels: int = 3) -> torch.Tensor:
    """Decode an encoded image (file contents) into the compact CxHxW form of :func:`load_image`.

    ``path`` only names the image in errors.
    """
    path = Path(path)
    check_channels(channels)
    try:
        raw = _decode_png16_colour(data) if _is_png16_colour(data) else _decode_with_pil(data, path)
    except DataError:
        raise
    except Exception as exc:  # decoders raise OSError/ValueError/RuntimeError, some with C++ traces
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot decode image {path}: {first_line[:200]}") from exc
    return _to_channels(raw, path, channels)


def read_image(path: str | Path, channels: int = 3) -> torch.Tensor:
    """Read an image as a CxHxW float32 tensor in [0, 1]: RGB (``channels=3``) or grayscale (``channels=1``)."""
    return to_float(load_image(path, channels))


def check_channels(channels: int) -> int:
    """``channels`` if images are read with that many channels (1 or 3), else DataError."""
    if channels not in CHANNELS:
        raise DataError(f"images are read with 1 (grayscale) or 3 (RGB) channels, not {channels}")
    return channels


def to_grayscale(image: torch.Tensor) -> torch.Tensor:
    """The ITU-R BT.601 luma of a 3xHxW image, 1xHxW: Y = 0.299 R + 0.587 G + 0.114 B.

    A uint8 image gives uint8 as Pillow's ``convert("L")`` does: weights 19595/65536, 38470/65536 and
    7471/65536 (0.299, 0.587, 0.114 to 16 bits, summing to one), rounded to the nearest level, so a gray
    pixel (R = G = B) keeps its value. A float image gives the same weighted sum unrounded.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise DataError(f"to_grayscale needs a 3xHxW image, got shape {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        r, g, b = image.to(torch.int32).unbind(0)
        return ((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16).to(torch.uint8).unsqueeze(0)
    r, g, b = image.float().unbind(0)
    return ((r * 19595 + g * 38470 + b * 7471) / 65536.0).unsqueeze(0)


def to_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """A compact 1- or 3-channel image with ``channels`` channels: gray repeated to RGB, or RGB to its luma."""
    check_channels(channels)
    if image.shape[0] == channels:
        return image
    if channels == 3:
        return image.expand(3, -1, -1).contiguous()
    return to_grayscale(image)


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
    """Write a 3xHxW (or 1xHxW, or HxW: an 8-bit grayscale file) image in [0, 1] to PNG or JPEG, by extension.

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
    encoded = encode_image(pixels, suffix, quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(encoded)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def encode_image(pixels: torch.Tensor, suffix: str, quality: int = 95) -> bytes:
    """Encode a 3xHxW or 1xHxW uint8 image as PNG (compression level 6) or JPEG (``quality``, 4:2:0 chroma)."""
    kind = _ENCODERS[suffix.lower()]
    array = pixels.permute(1, 2, 0).numpy()
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    if kind == "PNG":
        image.save(buffer, format=kind, compress_level=6)
    else:
        image.save(buffer, format=kind, quality=quality)
    return buffer.getvalue()


def _is_png16_colour(data: bytes) -> bool:
    # IHDR follows the signature: bytes 24 and 25 are the bit depth and the colour type.
    return (
        data.startswith(_PNG_SIGNATURE) and len(data) > 25 and data[24] == 16 and data[25] in _PNG_COLOUR_WITH_16_BITS
    )


def _decode_png16_colour(data: bytes) -> torch.Tensor:
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as decode_with_torchvision

    buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    with quiet_codec_warnings():
        return decode_with_torchvision(buffer, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=True)


def _decode_with_pil(data: bytes, path: Path) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as opened:  # an animated GIF/WebP opens at its first frame
        # torchvision.io ignored a WebP's EXIF orientation; so does this reader, to read every image as before.
        img: Image.Image = opened if opened.format == "WEBP" else ImageOps.exif_transpose(opened)
        if img.mode == "P" and opened.format == "GIF":
            return _channels_first(_gif_colours(img))
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode == "PA":
            img = img.convert("RGBA")
        elif img.mode == "1":
            img = img.convert("L")
        elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGB")  # CMYK: round(C*K/255) on the stored inks, as libjpeg-based readers do
        array = np.array(img)
    if array.dtype in (np.int32, np.uint32, np.int16):  # 16-bit grayscale as 'I' / 'I;16'
        array = array.astype(np.uint16)
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"cannot decode image {path}: unsupported pixel type {array.dtype}")
    return _channels_first(array)


def _gif_colours(img: Image.Image) -> np.ndarray:
    """A GIF frame's colours, its transparent pixels in the background colour (as torchvision.io reads GIFs).

    Kept so that results made with that reader stay reproducible; a PNG's transparency becomes alpha instead.
    """
    palette = np.array(img.getpalette("RGB") or [0, 0, 0], dtype=np.uint8).reshape(-1, 3)
    index = np.array(img).astype(np.intp)
    if "transparency" in img.info:
        background = min(int(img.info.get("background", 0)), len(palette) - 1)
        index[index == img.info["transparency"]] = background
    return palette[np.minimum(index, len(palette) - 1)]


def _channels_first(array: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC uint8/uint16 array -> CxHxW tensor (uint16 kept as torch.uint16)."""
    tensor = torch.from_numpy(array.astype(np.int32) if array.dtype == np.uint16 else array)
    tensor = tensor.unsqueeze(-1) if tensor.dim() == 2 else tensor
    tensor = tensor.permute(2, 0, 1).contiguous()
    return tensor.to(torch.uint16) if array.dtype == np.uint16 else tensor


def _to_channels(raw: torch.Tensor, path: Path, wanted: int) -> torch.Tensor:
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
    if channels not in (1, 3):
        raise DataError(f"cannot decode image {path}: {channels} channels (expected 1 to 4)")
    return to_channels(image, wanted).contiguous()


def _composite_on_white(color: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    if color.dtype == torch.uint8:
        a = alpha.float() / 255.0
        return (color.float() * a + 255.0 * (1.0 - a)).round_().to(torch.uint8)
    return color * alpha + (1.0 - alpha)
