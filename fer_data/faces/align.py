"""Eye-based alignment: a similarity transform that puts both eye centres at fixed points.

Rotation, uniform scale and translation only (no shear), so the face keeps its proportions
and expression geometry; the transform is also applied to the landmarks, which is what lets
tests check the result on real faces.
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


def warp(grey: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Warp to size x size; pre-shrinks with area averaging when the scale is < 0.5 (no aliasing)."""
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    if scale < 0.5:
        f = min(1.0, 2.0 * scale)
        small = cv2.resize(grey, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        fx = small.shape[1] / grey.shape[1]
        fy = small.shape[0] / grey.shape[0]
        # small pixel (xs, ys) sits at original ((xs + .5) / fx - .5, (ys + .5) / fy - .5)
        back = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        m = m @ back
        grey = small
    return cv2.warpAffine(grey, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_targets(size: int, eye_left: tuple[float, float], eye_right: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Target eye centres in pixel coordinates of a size x size output."""
    return np.array(eye_left) * size, np.array(eye_right) * size
