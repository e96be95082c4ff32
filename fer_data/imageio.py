"""Decoding raw image files into grey uint8 arrays, with the quirks of real datasets handled.

JAFFE ships palette ("P" mode) TIFFs whose pixel values are palette indices, not grey
levels; reading them as arrays without applying the palette gives a scrambled image. Other
datasets mix 16-bit, RGBA, CMYK and EXIF-rotated phone photos. Everything goes through PIL's
conversions here, so every source gets the same correct grey levels.
"""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_data.records import sha256_bytes


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


#: File signatures of the lossless formats OpenCV decodes exactly as PIL does for 8-bit data.
_FAST_MAGIC = (b"II*\x00", b"MM\x00*", b"\x89PNG")


def _decode_fast(data: bytes) -> np.ndarray | None:
    """8-bit TIFF/PNG through OpenCV (grey, BGR or BGRA as stored), or None to take PIL's path.

    PIL parses TIFF tags in Python (1.2 ms for a 256x256 JAFFE file, against 0.2 ms here),
    which is a tenth of a JAFFE image's whole curation. OpenCV applies palettes too; on the
    real JAFFE palette TIFFs and CK+ PNGs both give identical grey levels. Anything else
    (16-bit, float, JPEG with its EXIF orientation, files OpenCV rejects) goes through PIL.
    """
    if not data.startswith(_FAST_MAGIC):
        return None
    cv2 = _quiet_cv2()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint8:
        return None
    return img if img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4)) else None


def _fast_grey_rgb(img: np.ndarray, colour: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if img.ndim == 2:
        return img, None
    cv2 = _quiet_cv2()
    bgr = img.shape[2] == 3
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_BGRA2GRAY)
    return grey, (cv2.cvtColor(img, cv2.COLOR_BGR2RGB if bgr else cv2.COLOR_BGRA2RGB) if colour else None)


@lru_cache(maxsize=1)
def _quiet_cv2():
    """OpenCV with its own log silenced: a broken file is reported once, as a reject, by PIL's path."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def decode_grey(data: bytes) -> np.ndarray:
    """Decode image bytes to a 2-D grey uint8 array (raises UnreadableImage)."""
    return decode(data)[0]


#: PIL modes that hold colour; other modes (L, I;16, F, 1) are grey and give no RGB copy.
_COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})


def decode(data: bytes, colour: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey, rgb) from one decode of image bytes (raises UnreadableImage).

    grey is what every step uses; rgb is the (h, w, 3) colour image when `colour` is asked for
    and the file has colour (the face encoder wants colour), else None: a grey file's colour
    image is its grey levels on three channels.
    """
    fast = _decode_fast(data)
    if fast is not None and fast.shape[0] >= 8 and fast.shape[1] >= 8:
        grey, rgb = _fast_grey_rgb(fast, colour)
        return np.ascontiguousarray(grey), rgb
    with warnings.catch_warnings():
        # PIL warns about corrupt metadata (EXIF) it skips; a broken image still raises below.
        warnings.simplefilter("ignore", UserWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                img = ImageOps.exif_transpose(img) or img
                grey = to_grey(img)
                rgb = np.asarray(img.convert("RGB"), np.uint8) if colour and img.mode in _COLOUR_MODES else None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise UnreadableImage(f"cannot decode image: {exc}") from None
    if grey.ndim != 2 or grey.shape[0] < 8 or grey.shape[1] < 8:
        raise UnreadableImage(f"decoded image has unusable shape {grey.shape}")
    return np.ascontiguousarray(grey), rgb


def read_grey(path: str | Path) -> tuple[np.ndarray, str]:
    """Read a file: (grey image, sha256 of the file bytes)."""
    grey, _, digest = read_image(path)
    return grey, digest


def read_image(path: str | Path, colour: bool = False) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Read a file: (grey image, RGB image or None (see decode), sha256 of the file bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"cannot read file: {exc.strerror or exc}") from None
    grey, rgb = decode(data, colour)
    return grey, rgb, sha256_bytes(data)


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"})


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
