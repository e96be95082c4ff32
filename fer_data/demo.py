"""Embedded sample data: raw trees in each dataset's native layout, built from real faces.

The datasets are licensed and cannot ship with the project, but a pipeline that has only
ever seen synthetic blobs proves nothing. scikit-image ships real photographs: 100 face
crops from Labeled Faces in the Wild (25x25, `skimage.data.lfw_subset()`) and the
astronaut portrait (Eileen Collins). The demo trees place those real faces into images of
each dataset's size and layout. Their expression labels are synthetic (assigned in a fixed
cycle): they exercise the pipeline, they do not teach a model anything.
"""

from __future__ import annotations

import logging
import warnings
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("fer_data.demo")


class DemoFaces:
    """Real face photographs from installed packages, rendered at the sizes datasets use."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    @cached_property
    def lfw(self) -> np.ndarray:
        """(100, 25, 25) uint8: the face half of scikit-image's LFW subset (the rest are non-faces)."""
        from skimage import data

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            faces = data.lfw_subset()[:100]
        return np.clip(faces * 255.0 + 0.5, 0, 255).astype(np.uint8)

    @cached_property
    def astronaut(self) -> np.ndarray:
        """The astronaut portrait (512x512) in grey."""
        from skimage import data

        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)

    def __len__(self) -> int:
        return len(self.lfw)

    def face(self, i: int, size: int) -> np.ndarray:
        """LFW face i as a tight size x size crop (like FER2013's 48x48 crops)."""
        f = self.lfw[i % len(self.lfw)]
        interp = cv2.INTER_CUBIC if size > f.shape[0] else cv2.INTER_AREA
        return cv2.resize(f, (size, size), interpolation=interp)

    def compose(self, width: int, height: int, placements: list[tuple[int, float, float, int]]) -> np.ndarray:
        """A grey frame with faces pasted in: placements are (face index, centre x, centre y, face px).

        The background is the first face blurred to fill the frame, and faces are blended in
        with a feathered ellipse, so edges do not create false gradients for the detector.
        """
        first = self.lfw[placements[0][0] % len(self.lfw)] if placements else self.lfw[0]
        canvas = cv2.GaussianBlur(cv2.resize(first, (width, height), interpolation=cv2.INTER_CUBIC), (0, 0), 12).astype(
            np.float32
        )
        for idx, cx, cy, px in placements:
            face = self.face(idx, px).astype(np.float32)
            # The LFW crop is tight on the face: pad it with its own edge so the pasted patch
            # includes some context around the face, then blend with a soft elliptical mask.
            pad = px // 4
            patch = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REFLECT)
            mask = np.zeros(patch.shape, np.float32)
            c = patch.shape[0] // 2
            cv2.ellipse(mask, (c, c), (int(px * 0.62), int(px * 0.7)), 0, 0, 360, 1.0, -1)
            mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, px / 12))
            x0, y0 = int(round(cx - c)), int(round(cy - c))
            _blend(canvas, patch, mask, x0, y0)
        return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)

    def portrait(self, i: int, size: int, face_fraction: float = 0.5, jitter: float = 0.05) -> np.ndarray:
        """A size x size frame with one face (JAFFE-, RAF-DB- or class-folder-like)."""
        j = self.rng.uniform(-jitter, jitter, 2) * size
        px = int(size * face_fraction)
        return self.compose(size, size, [(i, size / 2 + j[0], size / 2 + j[1], px)])


def _blend(canvas: np.ndarray, patch: np.ndarray, mask: np.ndarray, x0: int, y0: int) -> None:
    h, w = canvas.shape
    ph, pw = patch.shape
    xs, ys = max(0, -x0), max(0, -y0)
    xe, ye = min(pw, w - x0), min(ph, h - y0)
    if xe <= xs or ye <= ys:
        return
    region = canvas[y0 + ys : y0 + ye, x0 + xs : x0 + xe]
    m = mask[ys:ye, xs:xe]
    region[:] = region * (1 - m) + patch[ys:ye, xs:xe] * m


def write_image(path: Path, grey: np.ndarray, **pil_kwargs) -> None:
    """Write an image with PIL (format from the suffix), creating folders."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey).save(path, **pil_kwargs)


def write_demo(out_dir: str | Path, source_names: list[str] | None = None, seed: int = 0) -> dict[str, Path]:
    """Write each source's demo tree into OUT/<source>/; returns the roots written."""
    from fer_data import sources

    out = Path(out_dir)
    faces = DemoFaces(seed)
    written: dict[str, Path] = {}
    for name in source_names or sources.names():
        cls = sources.get(name)
        root = out / name
        try:
            cls.write_demo(root, faces)
        except NotImplementedError:
            log.warning("%s has no demo tree; skipped", name)
            continue
        written[name] = root
        log.info("demo tree for %s written to %s", name, root)
    return written


def placed_landmarks(grey: np.ndarray, cx: float, cy: float, px: int) -> np.ndarray:
    """(68, 2) landmarks for a face `compose` pasted at (cx, cy), `px` wide.

    Stands in for a dataset's own landmark annotations (CK+'s AAM tracks, AffectNet's
    landmark field) in demo trees. They are fitted from the placement box, not from a
    detection, so the curated `provided_landmarks_nme` measures a real (small) disagreement
    between two fits instead of comparing a fit with itself.
    """
    from fer_data.faces import landmarks

    half = 0.4 * px
    box = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    return landmarks.predict(grey, box)
