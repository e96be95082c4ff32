"""Face detection backends (dlib HOG, dlib CNN) behind one function, run at a chosen scale.

dlib's detectors find faces of about 80 px and up. Upsampling every image (face_recognition's
default) quadruples the cost and is wasted on a 640x490 CK+ frame whose face is 250 px wide;
downscaling such frames is what makes detection cheap. So each image is rescaled so that the
face we expect (a source-declared fraction of the image side) is about `target_face_px`
wide, detected once, and retried upsampled only when nothing was found.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from fer_data.params import FaceParams


@dataclass(frozen=True)
class Detection:
    """A face box in original-image coordinates (left, top, right, bottom, inclusive)."""

    box: tuple[int, int, int, int]
    score: float | None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0] + 1

    @property
    def area(self) -> int:
        return self.width * (self.box[3] - self.box[1] + 1)

    @property
    def centre_x(self) -> float:
        return (self.box[0] + self.box[2]) / 2.0


@lru_cache(maxsize=1)
def _hog():
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _cnn():
    import dlib
    import face_recognition_models

    return dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())


def _run_hog(img: np.ndarray, upsample: int, threshold: float) -> list[tuple[tuple[int, int, int, int], float]]:
    rects, scores, _ = _hog().run(img, upsample, threshold)
    return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]


def _run_cnn(img: np.ndarray, upsample: int, threshold: float) -> list[tuple[tuple[int, int, int, int], float]]:
    out = []
    for d in _cnn()(img, upsample):
        if d.confidence >= threshold:
            r = d.rect
            out.append(((r.left(), r.top(), r.right(), r.bottom()), float(d.confidence)))
    return out


#: Pluggable backends: name -> (grey image, upsample count, threshold) -> [(box, score)].
BACKENDS: dict[str, Callable[[np.ndarray, int, float], list]] = {"hog": _run_hog, "cnn": _run_cnn}


#: Scales this close to 1 are not worth a resize: HOG finds the same faces at +-15 % of the
#: target size, and the resize costs more than the search it saves.
SCALE_DEADBAND = (0.85, 1.15)
#: The 2x retry of an image where nothing was found is skipped above this side (px): a frame that
#: large is searched at 4x the pixels for faces that were expected to be big already.
RETRY_MAX_SIDE = 2000


def detection_scale(shape: tuple[int, int], expected_face_fraction: float, params: FaceParams) -> float:
    """Factor that brings the expected face to about target_face_px (1.0 when already close)."""
    expected_px = max(1.0, expected_face_fraction * min(shape[:2]))
    scale = min(params.target_face_px / expected_px, params.max_upscale)
    return 1.0 if SCALE_DEADBAND[0] <= scale <= SCALE_DEADBAND[1] else scale


def detect_faces(grey: np.ndarray, expected_face_fraction: float, params: FaceParams) -> list[Detection]:
    """All faces in a grey image, in original coordinates, largest first."""
    backend = BACKENDS[params.detector]
    threshold = params.hog_threshold if params.detector == "hog" else params.cnn_threshold
    scale = detection_scale(grey.shape, expected_face_fraction, params)
    work = grey
    if scale != 1.0:
        # Area averaging only where skipping pixels would alias (below half size): at 0.5-1 it
        # costs 8x more than bilinear (0.6 vs 0.07 ms for a 256x256 frame) for the same detections.
        interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
        work = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interp)
    found = backend(work, 0, threshold)
    if not found and params.retry_upsampled and max(work.shape) <= RETRY_MAX_SIDE:
        found = backend(work, 1, threshold)
    dets = [Detection(_unscale(box, scale, grey.shape), score) for box, score in found]
    return sorted(dets, key=lambda d: (-d.area, d.box))


def _unscale(box: tuple[int, int, int, int], scale: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Map a box found on the rescaled image back, clipped to the original frame."""
    h, w = shape[:2]
    l, t, r, b = (v / scale for v in box)
    return (
        int(max(0, math.floor(l))),
        int(max(0, math.floor(t))),
        int(min(w - 1, math.ceil(r))),
        int(min(h - 1, math.ceil(b))),
    )


def choose_face(dets: list[Detection], side: str | None, width: int) -> Detection | None:
    """The face to keep: the largest, or for two-person videos the largest on the given side.

    None when no face is on that side: the frame's annotation is that side's person, so the
    other person's face must not be kept under their label.
    """
    if side in ("left", "right"):
        mid = width / 2.0
        on_side = [d for d in dets if (d.centre_x < mid) == (side == "left")]
        return on_side[0] if on_side else None
    return dets[0]
