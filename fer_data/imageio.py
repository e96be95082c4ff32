"""Decoding raw image files into grey uint8 arrays, with the quirks of real datasets handled.

JAFFE ships palette ("P" mode) TIFFs whose pixel values are palette indices, not grey
levels; reading them as arrays without applying the palette gives a scrambled image. Other
datasets mix 16-bit, RGBA, CMYK and EXIF-rotated phone photos. Everything goes through PIL's
conversions here, so every source gets the same correct grey levels.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_data.sources.base import sha256_bytes


class UnreadableImage(ValueError):
    """The bytes are not a decodable image (truncated, not an image, unsupported)."""


def to_grey(img: Image.Image) -> np.ndarray:
    """Convert any PIL image to grey levels, applying palettes and dropping alpha."""
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0
        scale = 255.0 / 65535.0 if hi > 255 else 1.0
        return np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        return np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img, dtype=np.uint8)


def decode_grey(data: bytes) -> np.ndarray:
    """Decode image bytes to a 2-D grey uint8 array (raises UnreadableImage)."""
    with warnings.catch_warnings():
        # PIL warns about corrupt metadata (EXIF) it skips; a broken image still raises below.
        warnings.simplefilter("ignore", UserWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                img = ImageOps.exif_transpose(img) or img
                grey = to_grey(img)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise UnreadableImage(f"cannot decode image: {exc}") from None
    if grey.ndim != 2 or grey.shape[0] < 8 or grey.shape[1] < 8:
        raise UnreadableImage(f"decoded image has unusable shape {grey.shape}")
    return np.ascontiguousarray(grey)


def read_grey(path: str | Path) -> tuple[np.ndarray, str]:
    """Read a file: (grey image, sha256 of the file bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"cannot read file: {exc.strerror or exc}") from None
    return decode_grey(data), sha256_bytes(data)


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"})


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
