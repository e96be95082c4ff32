"""Eye-based alignment: a similarity transform that puts both eye centres at fixed points.

Rotation, uniform scale and translation only (no shear), so the face keeps its proportions
and expression geometry; the transform is also applied to the landmarks, which is what lets
tests check the result on real faces.

Aligning a tight crop (FER2013's 48x48 faces, RAF-DB's aligned crops) rotates and shifts
pixels from outside the frame into the output. How they are filled is `align.border`:
`edge` repeats the frame's last row or column (streaks), `reflect` mirrors the frame at its
edge (texture continues, no streaks), `constant` paints them black (a clear mask, but a hard
edge a model can learn from). The share of the output that came from outside is recorded
per row as `outside_fraction`.
"""

from __future__ import annotations

import cv2
import numpy as np


def similarity(src_left: np.ndarray, src_right: np.ndarray, dst_left: np.ndarray, dst_right: np.ndarray) -> np.ndarray:
    """2x3 matrix mapping the two source points exactly onto the two destination points."""
    s = complex(*(src_right - src_left))
    d = complex(*(dst_right - dst_left))
    if abs(s) < 1e-6:
        raise ValueError("eye centres coincide")
    a = d / s  # scale * e^{i angle}
    t = complex(*dst_left) - a * complex(*src_left)
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]], dtype=np.float64)


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


#: OpenCV border mode of each `align.border` value. REFLECT_101 mirrors about the edge pixel
#: (it is not repeated), so the fill has no doubled row at the frame's edge.
BORDERS = {"edge": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}
#: The `constant` fill: black, as insightface's norm_crop pads.
CONSTANT_FILL = 0


def outside_fraction(m: np.ndarray, shape: tuple[int, ...], size: int) -> float:
    """Share of the size x size output's pixels whose source lies outside the h x w frame (border fill)."""
    h, w = shape[:2]
    ys, xs = np.mgrid[0:size, 0:size]
    src = transform_points(cv2.invertAffineTransform(m), np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))
    outside = (src[:, 0] < 0) | (src[:, 0] > w - 1) | (src[:, 1] < 0) | (src[:, 1] > h - 1)
    return float(outside.mean())


def warp(grey: np.ndarray, m: np.ndarray, size: int, border: str = "edge") -> np.ndarray:
    """Warp to size x size; pre-shrinks with area averaging when the scale is < 0.5 (no aliasing).

    Only the part of the image the output can sample is pre-shrunk: area averaging at a
    non-integer factor costs ~0.6 ms on a whole 256x256 frame, a fifth of that on the face.
    """
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    if scale < 0.5:
        grey, m = _crop_to_output(grey, m, size, margin=2.0 / scale + 2)
        f = min(1.0, 2.0 * scale)
        small = cv2.resize(grey, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        fx = small.shape[1] / grey.shape[1]
        fy = small.shape[0] / grey.shape[0]
        # small pixel (xs, ys) sits at original ((xs + .5) / fx - .5, (ys + .5) / fy - .5)
        back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        m = m @ back
        grey = small
    return cv2.warpAffine(
        grey, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=BORDERS[border], borderValue=CONSTANT_FILL
    )


def _crop_to_output(grey: np.ndarray, m: np.ndarray, size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The source region the size x size output maps from (plus margin), and `m` re-based onto it.

    Clipped at the frame's edges, so the border fill still starts at the frame's own edge.
    """
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    src = transform_points(cv2.invertAffineTransform(m), corners)
    h, w = grey.shape[:2]
    x0, y0 = (max(0, int(np.floor(v - margin))) for v in src.min(axis=0))
    x1 = min(w, int(np.ceil(src[:, 0].max() + margin)) + 1)
    y1 = min(h, int(np.ceil(src[:, 1].max() + margin)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return grey, m  # output entirely off the frame: keep the frame (all replicated border)
    shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], dtype=np.float64)
    return grey[y0:y1, x0:x1], m @ shift


def eye_targets(
    size: int, eye_left: tuple[float, float], eye_right: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Target eye centres in pixel coordinates of a size x size output."""
    return np.array(eye_left) * size, np.array(eye_right) * size
