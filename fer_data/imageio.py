"""Decoding raw image files into grey uint8 arrays, with the quirks of real datasets handled.

JAFFE ships palette ("P" mode) TIFFs whose pixel values are palette indices, not grey
levels; reading them as arrays without applying the palette gives a scrambled image. Other
datasets mix 16-bit, RGBA, CMYK and EXIF-rotated phone photos. Everything goes through PIL's
conversions here, so every source gets the same correct grey levels.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_data.records import sha256_bytes


class UnreadableImage(ValueError):
    """The bytes are not a decodable image (truncated, not an image, unsupported).

    `reason` is the reject reason the curation records: `unreadable_image` by default,
    `image_too_large` for a declared size above the pixel cap, `not_a_regular_file` for FIFOs,
    devices and folders (opened without blocking and never read).
    """

    def __init__(self, detail: str, reason: str = "unreadable_image"):
        super().__init__(detail)
        self.reason = reason


#: Default cap on the pixels of one frame, checked from the header before anything is decoded
#: (`faces.max_pixels`): 50 MP is a large phone photo; a decompression bomb declares gigapixels
#: in a few kB and would take a worker's memory (a 50 MP RGB decode is already 150 MB).
MAX_PIXELS = 50_000_000
#: A file may hold at most this many bytes a capped pixel (uncompressed 16-bit RGBA is 8), so
#: a multi-gigabyte file is refused before it is read into memory.
MAX_BYTES_PER_PIXEL = 8

#: PIL and Python put object addresses in some messages ("<_io.BytesIO object at 0x7f..>"): they
#: differ on every run, and reject details must be the same bytes for the same input.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def clean_detail(exc: BaseException | str) -> str:
    """An exception's message without memory addresses (reject details are compared byte for byte)."""
    return _ADDRESS.sub("", str(exc))


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


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or classic TIFF header without decoding, or None (PIL's path checks).

    Read by hand because PIL's lazy open parses every TIFF tag in Python (0.58 ms a JAFFE file,
    three times OpenCV's whole decode of it).
    """
    try:
        if data.startswith(b"\x89PNG") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith((b"II*\x00", b"MM\x00*")):
            end = "<" if data[:2] == b"II" else ">"
            (ifd,) = struct.unpack(end + "I", data[4:8])
            (count,) = struct.unpack(end + "H", data[ifd : ifd + 2])
            dims = {}
            for i in range(count):
                tag, kind, _, value = struct.unpack(end + "HHI4s", data[ifd + 2 + 12 * i : ifd + 14 + 12 * i])
                if tag in (256, 257):
                    dims[tag] = struct.unpack(end + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
            return (dims[256], dims[257]) if len(dims) == 2 else None
    except (struct.error, KeyError):
        return None
    return None


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise UnreadableImage(
            f"declared size {width}x{height} = {width * height} pixels is above the cap of {max_pixels} "
            "(faces.max_pixels)",
            "image_too_large",
        )


def decode_grey(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to a 2-D grey uint8 array (raises UnreadableImage)."""
    return decode(data, max_pixels=max_pixels)[0]


#: PIL modes that hold colour; other modes (L, I;16, F, 1) are grey and give no RGB copy.
_COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})


def decode(data: bytes, colour: bool = False, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey, rgb) from one decode of image bytes (raises UnreadableImage).

    grey is what every step uses; rgb is the (h, w, 3) colour image when `colour` is asked for
    and the file has colour (the face encoder wants colour), else None: a grey file's colour
    image is its grey levels on three channels. The declared size is checked against
    `max_pixels` before any pixel is decoded; PIL's own bomb guard (a warning, an error at twice
    its limit) is left to this check.
    """
    size = header_size(data)
    if size is not None:
        _check_pixels(*size, max_pixels)
        fast = _decode_fast(data)
        if fast is not None and fast.shape[0] >= 8 and fast.shape[1] >= 8:
            grey, rgb = _fast_grey_rgb(fast, colour)
            return np.ascontiguousarray(grey), rgb
    with warnings.catch_warnings():
        # PIL warns about corrupt metadata (EXIF) it skips; a broken image still raises below.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                _check_pixels(*img.size, max_pixels)
                img.load()
                img = ImageOps.exif_transpose(img) or img
                grey = to_grey(img)
                rgb = np.asarray(img.convert("RGB"), np.uint8) if colour and img.mode in _COLOUR_MODES else None
        except UnreadableImage:
            raise
        except Image.DecompressionBombError as exc:  # PIL's own guard, raised in open() above twice its limit
            raise UnreadableImage(f"{clean_detail(exc)} (faces.max_pixels)", "image_too_large") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise UnreadableImage(f"cannot decode image: {clean_detail(exc)}") from None
        except Exception as exc:  # a plugin's own bug on hostile bytes (struct.error, IndexError, ...)
            raise UnreadableImage(f"cannot decode image: {type(exc).__name__}: {clean_detail(exc)}") from None
    if grey.ndim != 2 or grey.shape[0] < 8 or grey.shape[1] < 8:
        raise UnreadableImage(f"decoded image has unusable shape {grey.shape}")
    return np.ascontiguousarray(grey), rgb


def read_file(path: str | Path, max_bytes: int) -> bytes:
    """A regular file's bytes; FIFOs, devices and folders are refused without blocking on them.

    Opened with O_NONBLOCK and checked with fstat on the open descriptor (not the path, which
    could be swapped in between): reading a FIFO would wait forever for a writer, and a device
    such as /dev/zero never ends.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnreadableImage(f"cannot read file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device"
            raise UnreadableImage(f"not a regular file ({kind})", "not_a_regular_file")
        if st.st_size > max_bytes:
            raise UnreadableImage(f"file of {st.st_size} bytes is above the cap of {max_bytes}", "image_too_large")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UnreadableImage(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_grey(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """Read a file: (grey image, sha256 of the file bytes)."""
    grey, _, digest = read_image(path, max_pixels=max_pixels)
    return grey, digest


def read_image(
    path: str | Path, colour: bool = False, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Read a file: (grey image, RGB image or None (see decode), sha256 of the file bytes)."""
    data = read_file(path, max_pixels * MAX_BYTES_PER_PIXEL + 1_000_000)  # + room for metadata
    grey, rgb = decode(data, colour, max_pixels)
    return grey, rgb, sha256_bytes(data)


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"})


def has_image_suffix(name: str) -> bool:
    """Image extensions match whatever their case (`.JPG`, `.Png`); hidden files (`._x.jpg`) never."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not Path(name).name.startswith(".")


def is_image_file(path: Path) -> bool:
    """An image file to read: anything but a folder, so a FIFO or broken link becomes a reject, not a silent skip."""
    return has_image_suffix(path.name) and not path.is_dir()
