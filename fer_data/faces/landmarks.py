"""68-point landmarks (dlib's iBUG-300W predictor shipped by face_recognition_models).

Index conventions (0-based, iBUG 68): jaw 0-16, brows 17-26, nose 27-35 (tip 30),
eye on the image's LEFT 36-41 (the person's right eye), eye on the image's RIGHT 42-47,
mouth 48-67. face_recognition calls 36-41 `left_eye`: it means image-left. Everything in
fer-data says "image-left" / "image-right" to keep that straight.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

IMAGE_LEFT_EYE = slice(36, 42)
IMAGE_RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH = slice(48, 68)
JAW_IMAGE_LEFT = 0
JAW_IMAGE_RIGHT = 16


@lru_cache(maxsize=1)
def _predictor():
    import dlib

    with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition_models
    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def predict(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(68, 2) float landmarks for the face in `box` (left, top, right, bottom)."""
    import dlib

    shape = _predictor()(grey, dlib.rectangle(*map(int, box)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre)."""
    both = points[36:48].reshape(2, 6, 2).sum(axis=1) / 6.0  # IMAGE_LEFT_EYE, IMAGE_RIGHT_EYE in one go
    return both[0], both[1]
