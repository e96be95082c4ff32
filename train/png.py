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

# 3x5 glyphs, rows top to bottom, "1" = ink: digits, capitals and a little punctuation (class names, legends).
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
    "A": "010101111101101",
    "B": "110101110101110",
    "C": "011100100100011",
    "D": "110101101101110",
    "E": "111100110100111",
    "F": "111100110100100",
    "G": "011100101101011",
    "H": "101101111101101",
    "I": "111010010010111",
    "J": "001001001101010",
    "K": "101101110101101",
    "L": "100100100100111",
    "M": "101111111101101",
    "N": "110101101101101",
    "O": "010101101101010",
    "P": "110101110100100",
    "Q": "010101101110011",
    "R": "110101110101101",
    "S": "011100010001110",
    "T": "111010010010010",
    "U": "101101101101111",
    "V": "101101101101010",
    "W": "101101111111101",
    "X": "101101010101101",
    "Y": "101101010010010",
    "Z": "111001010100111",
    "_": "000000000000111",
    ":": "000010000010000",
    "/": "001001010100100",
    ",": "000000000010100",
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
    """Draw S in capitals with the top-left corner at (x, y); characters outside the font are skipped."""
    for ch in s.upper():
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


def text_width(s: str) -> int:
    return len(s) * 4 * SCALE


def confusion_png(cm: np.ndarray, path: str | Path, classes: list[str] | None = None, cell: int = 32) -> None:
    """Heat map of a confusion matrix (rows actual, columns predicted), counts inked.

    Rows are labelled with the class index and name, columns with the index (names do not fit
    a cell); the caption says which is which.
    """
    n = cm.shape[0]
    names = [f"{i} {classes[i]}" if classes else str(i) for i in range(n)]
    left = 6 + max(text_width(s) for s in names) + 6
    top = 40
    width = max(left + n * cell + 1, 6 + text_width(CAPTION) + 6)
    img = np.full((top + n * cell + 1, width, 3), 255, np.uint8)
    text(img, CAPTION, 6, 6)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)  # row-normalised: recall on the diagonal
    for i in range(n):
        text(img, names[i], 6, top + i * cell + cell // 2 - 5)
        text(img, str(i), left + i * cell + cell // 2 - 3, top - 16)
        for j in range(n):
            shade = np.array([255, 255, 255]) - share[i, j] * np.array([225, 160, 60])
            y, x = top + i * cell, left + j * cell
            img[y : y + cell, x : x + cell] = shade.astype(np.uint8)
            label = str(int(cm[i, j]))
            ink = WHITE if share[i, j] > 0.6 else BLACK
            text(img, label, x + max(1, (cell - text_width(label)) // 2), y + cell // 2 - 5, ink)
    img[top::cell, left : left + n * cell + 1] = GREY
    img[top:, left : left + n * cell + 1 : cell] = GREY
    write_png(path, img)


CAPTION = "rows: actual, columns: predicted"


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
    text(img, "epoch", (left + right) // 2 - text_width("epoch") // 2, bottom + 6)
    for k, name in enumerate(series):  # the legend, top right, in each line's colour
        text(img, name, right - text_width(name) - 4, top + 4 + 14 * k, SERIES[k % len(SERIES)])
    for k, s in enumerate(series.values()):
        xs = [left + (right - left) * (i / max(epochs - 1, 1)) for i in range(len(s))]
        ys = [bottom - (bottom - top) * ((v - lo) / (hi - lo)) for v in s]
        for i in range(1, len(s)):
            _line(img, xs[i - 1], ys[i - 1], xs[i], ys[i], SERIES[k % len(SERIES)])
        if len(s) == 1:
            _line(img, xs[0] - 2, ys[0], xs[0] + 2, ys[0], SERIES[k % len(SERIES)])
    write_png(path, img)
