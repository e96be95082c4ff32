"""PNG plots for offline reading, drawn with numpy and written with zlib.

matplotlib is not in the stock PyTorch image (nor in this project), and DVC's own plots need a browser
with Vega from a CDN; a confusion heat map with its counts and the learning curves need only pixels and
digits, so this module draws them itself (a 3x5 digit font) and writes the PNG bytes by hand.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

# 3x5 glyphs, rows top to bottom, "1" = ink.
GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
    "-": "000000111000000",
    " ": "000000000000000",
}
SCALE = 2  # glyph pixels per font pixel
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)
SERIES = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as an 8-bit RGB PNG."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))  # filter type 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def text(img: np.ndarray, s: str, x: int, y: int, color=BLACK) -> None:
    """Draw digits (and . -) with the top-left corner at (x, y); characters outside the font are skipped."""
    for ch in s:
        glyph = GLYPHS.get(ch)
        if glyph is None:
            continue
        mask = np.array([c == "1" for c in glyph]).reshape(5, 3).repeat(SCALE, 0).repeat(SCALE, 1)
        region = img[y : y + 5 * SCALE, x : x + 3 * SCALE]
        region[mask[: region.shape[0], : region.shape[1]]] = color
        x += 4 * SCALE


def _line(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.round(np.linspace(x0, x1, n + 1)).astype(int)
    ys = np.round(np.linspace(y0, y1, n + 1)).astype(int)
    ok = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
    for dy in (0, 1):  # two pixels thick
        img[np.clip(ys[ok] + dy, 0, img.shape[0] - 1), xs[ok]] = color


def confusion_png(cm: np.ndarray, path: str | Path, cell: int = 32) -> None:
    """Heat map of a confusion matrix (rows actual, columns predicted, class indices on the axes), counts inked."""
    n = cm.shape[0]
    margin = 24
    img = np.full((margin + n * cell + 1, margin + n * cell + 1, 3), 255, np.uint8)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)  # row-normalised: recall on the diagonal
    for i in range(n):
        text(img, str(i), 6, margin + i * cell + cell // 2 - 5)
        text(img, str(i), margin + i * cell + cell // 2 - 3, 6)
        for j in range(n):
            shade = np.array([255, 255, 255]) - share[i, j] * np.array([225, 160, 60])
            y, x = margin + i * cell, margin + j * cell
            img[y : y + cell, x : x + cell] = shade.astype(np.uint8)
            label = str(int(cm[i, j]))
            ink = WHITE if share[i, j] > 0.6 else BLACK
            text(img, label, x + max(1, (cell - len(label) * 4 * SCALE) // 2), y + cell // 2 - 5, ink)
    img[margin::cell, margin:] = GREY
    img[margin:, margin::cell] = GREY
    write_png(path, img)


def curves_png(series: dict[str, list[float]], path: str | Path, width: int = 360, height: int = 220) -> None:
    """One panel of lines over epochs (series in SERIES colours, in insertion order); min and max inked on the y axis."""
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 48, width - 10, 10, height - 24
    values = [v for s in series.values() for v in s if v == v]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1
    epochs = max((len(s) for s in series.values()), default=1)
    _line(img, left, bottom, right, bottom, BLACK)
    _line(img, left, top, left, bottom, BLACK)
    text(img, f"{hi:.3g}", 2, top)
    text(img, f"{lo:.3g}", 2, bottom - 10)
    text(img, str(epochs), right - 12, bottom + 6)
    for k, s in enumerate(series.values()):
        xs = [left + (right - left) * (i / max(epochs - 1, 1)) for i in range(len(s))]
        ys = [bottom - (bottom - top) * ((v - lo) / (hi - lo)) for v in s]
        for i in range(1, len(s)):
            _line(img, xs[i - 1], ys[i - 1], xs[i], ys[i], SERIES[k % len(SERIES)])
        if len(s) == 1:
            _line(img, xs[0] - 2, ys[0], xs[0] + 2, ys[0], SERIES[k % len(SERIES)])
    write_png(path, img)
