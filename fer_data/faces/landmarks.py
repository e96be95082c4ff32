"""68-point landmarks (dlib's iBUG-300W predictor shipped by face_recognition_models).

The model is dlib's; it is evaluated by fer_data.faces.ert, a batch at a time (4.4-4.9x faster a
face than dlib's one-face call, which also holds the GIL; BENCHMARKS.md, section 2).

Index conventions (0-based, iBUG 68): jaw 0-16, brows 17-26, nose 27-35 (tip 30),
eye on the image's LEFT 36-41 (the person's right eye), eye on the image's RIGHT 42-47,
mouth 48-67. face_recognition calls 36-41 `left_eye`: it means image-left. Everything in
fer-data says "image-left" / "image-right" to keep that straight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IMAGE_LEFT_EYE = slice(36, 42)
IMAGE_RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH = slice(48, 68)
JAW_IMAGE_LEFT = 0
JAW_IMAGE_RIGHT = 16


def predict(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(68, 2) float landmarks for the face in `box` (left, top, right, bottom).

    For one-off use: a batch of one costs ~0.9 ms, a little less than dlib's own call; loops
    should collect their faces and call predict_many (0.25 ms a face from a hundred faces on).
    """
    return predict_many([grey], [box])[0]


def predict_many(images: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """(N, 68, 2) landmarks, one face a box: dlib's 68-point model evaluated for the whole batch.

    Sub-pixel: dlib's own call rounds every point to a whole pixel, 5 % of the eye distance of
    a 48x48 FER2013 face; fer_data.faces.ert returns the model's values before that rounding
    (rounded, they are dlib's points).
    """
    from fer_data.faces import ert

    return ert.predict(images, boxes)


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre)."""
    both = points[36:48].reshape(2, 6, 2).sum(axis=1) / 6.0  # IMAGE_LEFT_EYE, IMAGE_RIGHT_EYE in one go
    return both[0], both[1]
