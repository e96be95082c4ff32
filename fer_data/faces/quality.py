"""Per-face quality metrics a data steward can filter and validate on."""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from fer_data.faces.landmarks import JAW_IMAGE_LEFT, JAW_IMAGE_RIGHT, MOUTH, NOSE_TIP, eye_centres


def roll_degrees(points: np.ndarray) -> float:
    """Angle of the line from the image-left eye to the image-right eye (0 = level)."""
    left, right = eye_centres(points)
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def yaw_estimate(points: np.ndarray) -> float:
    """Nose-to-jaw asymmetry in -1..1: negative when the face turns towards the image's left."""
    roll = math.radians(roll_degrees(points))
    axis = np.array([math.cos(roll), math.sin(roll)])
    nose = points[NOSE_TIP] @ axis
    left = abs(nose - points[JAW_IMAGE_LEFT] @ axis)
    right = abs(points[JAW_IMAGE_RIGHT] @ axis - nose)
    return float((left - right) / max(left + right, 1e-6))


def image_metrics(aligned: np.ndarray) -> dict[str, float]:
    """Sharpness (variance of the Laplacian), brightness and contrast of the aligned face.

    cv2.meanStdDev: one pass for mean and (population) standard deviation, 10x less overhead
    than numpy's mean/std/var on a 48x48 face.
    """
    mean, std = cv2.meanStdDev(aligned)
    _, lap_std = cv2.meanStdDev(cv2.Laplacian(aligned, cv2.CV_64F))
    return {"sharpness": float(lap_std[0, 0]) ** 2, "brightness": float(mean[0, 0]), "contrast": float(std[0, 0])}


@lru_cache(maxsize=1)
def reference_shape() -> np.ndarray:
    """The predictor's own mean face: its fit on a featureless image (no pixel differences)."""
    from fer_data.faces.landmarks import predict

    return predict(np.full((100, 100), 128, np.uint8), (0, 0, 99, 99))


def shape_residual(points: np.ndarray) -> float:
    """RMS distance to the reference face after the best similarity fit, / inter-ocular distance.

    Measured on real data: JAFFE and CK+ fits stay below 0.18 (open-mouth surprise included);
    on 48x48 FER2013 crops the 10% of fits above ~0.21 are mostly visibly wrong (twisted jaw,
    eyes on eyebrows, profile faces).
    """
    cb, ref_eye_distance = _reference_complex()
    a = points - points.sum(axis=0) / len(points)
    ca = a[:, 0] + 1j * a[:, 1]
    s = (np.conj(ca) @ cb) / (np.conj(ca) @ ca)
    return float(np.sqrt((np.abs(cb - s * ca) ** 2).sum() / len(points)) / ref_eye_distance)


@lru_cache(maxsize=1)
def _reference_complex() -> tuple[np.ndarray, float]:
    """The centred reference shape as complex numbers, and its eye distance (fixed: computed once)."""
    ref = reference_shape()
    b = ref - ref.mean(axis=0)
    left, right = eye_centres(ref)
    return b[:, 0] + 1j * b[:, 1], float(np.hypot(*(right - left)))


def landmark_problem(
    points: np.ndarray,
    box: tuple[int, int, int, int],
    min_ratio: float,
    max_ratio: float,
    max_roll: float,
    max_residual: float = 0.22,
) -> str | None:
    """Why a landmark fit is implausible (None when it looks like a face).

    The predictor always returns 68 points, even on a blurry 48x48 crop or a false
    detection; these checks catch fits whose eyes, nose and mouth are not where a face has them.
    """
    left, right = eye_centres(points)
    width = box[2] - box[0] + 1
    eye_dist = float(np.hypot(*(right - left)))
    ratio = eye_dist / max(width, 1)
    if not min_ratio <= ratio <= max_ratio:
        return f"eye distance {ratio:.2f} of the face width (expected {min_ratio}-{max_ratio})"
    roll = roll_degrees(points)
    if abs(roll) > max_roll:
        return f"eye line rolled {roll:.0f} degrees (limit {max_roll:.0f})"
    # In the eye-line frame the nose tip must lie below the eyes and the mouth below the nose.
    r = math.radians(roll)
    down = np.array([-math.sin(r), math.cos(r)])
    eyes_y = ((left + right) / 2) @ down
    nose_y = points[NOSE_TIP] @ down
    mouth_y = points[MOUTH].mean(axis=0) @ down
    if not eyes_y + 0.2 * eye_dist < nose_y < mouth_y - 0.1 * eye_dist:
        return "eyes, nose and mouth are not in face order"
    if mouth_y - eyes_y > 2.0 * eye_dist:
        return "mouth implausibly far below the eyes"
    residual = shape_residual(points)
    if residual > max_residual:
        return f"landmark shape is {residual:.2f} away from a face shape (limit {max_residual})"
    return None


#: A crop whose grey levels vary less than this (standard deviation) is blank or uniform, not a
#: face. Real samples: FER2013 crops start at 17.3 apart from its blank frames (0); JAFFE, CK+
#: and CK+48 at 29 and above.
MIN_CROP_CONTRAST = 2.0
#: Neighbouring pixels of a photographed face are correlated (lowest on the real samples: FER2013
#: 0.65, CK+48 0.87); in noise they are not (white noise: 0.01). Below this a crop is noise.
MIN_NEIGHBOUR_CORRELATION = 0.5
#: Crops are judged at most this many pixels a side: 2.6 ms for a 256x256 frame at full size,
#: 0.02 ms at 48x48, the size of most pre-cropped datasets.
CROP_CHECK_SIDE = 64


def neighbour_correlation(grey: np.ndarray) -> float:
    """Correlation of each pixel with its right and lower neighbours (0 for a uniform image)."""
    x = grey.astype(np.float64) - grey.mean()
    energy = float((x * x).sum())
    if energy == 0.0:
        return 0.0
    return float(((x[:, :-1] * x[:, 1:]).sum() + (x[:-1] * x[1:]).sum()) / (2 * energy))


def crop_problem(crop: np.ndarray) -> str | None:
    """Why a pre-cropped image or a given face box holds no face (blank, uniform, noise), or None.

    Pre-cropped sources and given boxes skip detection, and a landmark fit on anything returns
    a plausible face shape (the model's mean), so without this a blank frame came out "aligned".
    Cheap and definitive only: smooth patterns that are not faces still pass (RELIABILITY.md).
    Large crops are judged at CROP_CHECK_SIDE (area-averaged noise stays uncorrelated).
    """
    if max(crop.shape) > CROP_CHECK_SIDE:
        import cv2

        scale = CROP_CHECK_SIDE / max(crop.shape)
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    contrast = float(crop.std())
    if contrast < MIN_CROP_CONTRAST:
        return f"uniform image (grey-level deviation {contrast:.2f} < {MIN_CROP_CONTRAST})"
    rho = neighbour_correlation(crop)
    if rho < MIN_NEIGHBOUR_CORRELATION:
        return f"noise (neighbouring pixels correlate {rho:.2f} < {MIN_NEIGHBOUR_CORRELATION})"
    return None
