"""Draw docs/align_border.png: tight face crops aligned with each `align.border` fill, side by side.

    python docs/border_figure.py                      # the README picture, from the demo's FER2013-like crops
    python docs/border_figure.py --images DIR --out /tmp/x.png   # the same for any folder of face crops

Each row: the crop as given, then its aligned 48x48 face with edge, reflect and constant
fill (3x enlarged, nearest neighbour), with the share of the output that came from outside
the crop (`outside_fraction`) under the first aligned column.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_data import params as params_mod
from fer_data.demo import DemoFaces
from fer_data.faces.process import process
from fer_data.imageio import read_grey
from fer_data.records import Sample

BORDERS = ("edge", "reflect", "constant")
ZOOM = 3  # enlargement of each 48x48 tile, so the fill is visible on screen
LABEL_H = 18  # px of caption band above each column


def aligned(grey: np.ndarray, border: str) -> tuple[np.ndarray, float] | None:
    p = params_mod.resolve({"align": {"border": border}, "run": {"workers": 1}})
    row = process(Sample("figure", "x", None, None, pixels=grey, precropped=True), p)
    if not isinstance(row, dict) or not row["aligned"]:
        return None
    return np.frombuffer(row["image"], np.uint8).reshape(row["height"], row["width"]), row["outside_fraction"]


def tile(img: np.ndarray, size: int = 48 * ZOOM) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)


def figure(crops: list[np.ndarray]) -> np.ndarray:
    rows = []
    for grey in crops:
        outs = [aligned(grey, b) for b in BORDERS]
        if any(o is None for o in outs):
            continue
        cells = [tile(grey)] + [tile(o[0]) for o in outs]
        row = np.concatenate([np.pad(c, ((0, 0), (2, 2)), constant_values=255) for c in cells], axis=1)
        cv2.putText(
            row, f"outside {outs[0][1]:.0%}", (48 * ZOOM + 8, 48 * ZOOM - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255
        )
        rows.append(np.pad(row, ((2, 2), (0, 0)), constant_values=255))
    grid = np.concatenate(rows, axis=0)
    head = np.full((LABEL_H, grid.shape[1]), 255, np.uint8)
    for i, name in enumerate(("crop", *BORDERS)):
        cv2.putText(head, name, (i * (48 * ZOOM + 4) + 6, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0)
    return np.concatenate([head, grid], axis=0)


def demo_crops(n: int) -> list[np.ndarray]:
    """Tight 48x48 crops like FER2013's: the demo faces, some shifted and turned so the frame edge shows."""
    faces = DemoFaces(0)
    out = []
    for i in range(n):
        face = faces.face(i, 64)
        angle, dx = (-14, 4, 16, -8, 10, -18)[i % 6], (5, -4, 0, 6, -6, 3)[i % 6]
        m = cv2.getRotationMatrix2D((32 + dx, 32), angle, 1.0)
        out.append(
            cv2.resize(cv2.warpAffine(face, m, (64, 64), borderMode=cv2.BORDER_REFLECT_101)[6:58, 6:58], (48, 48))
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, help="a folder of face crops (default: the demo's)")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("align_border.png"))
    args = ap.parse_args()
    if args.images:
        files = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
        crops = [read_grey(p)[0] for p in files[: args.limit]]
    else:
        crops = demo_crops(args.limit)
    cv2.imwrite(str(args.out), figure(crops), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(args.out)


if __name__ == "__main__":
    main()
