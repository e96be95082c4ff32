"""128-d face descriptors equal to dlib's face encoder, a batch at a time.

The model is dlib's (`dlib_face_recognition_resnet_model_v1.dat` from face_recognition_models,
Boost licence, trained by Davis King on public face data; unlike the 68-point landmark model it
carries no research-only restriction). dlib evaluates it one face at a time, ~80 ms a face on
one core whether given one face or many, and holds the GIL while doing so.

Chips are dlib's own: `dlib.get_face_chip(image, 68 points, 150, 0.25)`, colour when the
original image is colour, grey replicated to three channels otherwise (what dlib does with a
grey image).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

EMBEDDING_DIM = 128
#: dlib's documented decision threshold: two descriptors closer than 0.6 (Euclidean) are the same
#: person (99.38 % on the LFW benchmark, dlib's dnn_face_recognition_ex.cpp and its blog post).
SAME_PERSON_DISTANCE = 0.6
#: The chip the network was trained on: 150x150 RGB, the face's landmarks mapped to dlib's mean
#: face shape with 25 % padding around it (dlib's get_face_chip defaults).
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def _quiet_import_models():
    with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition_models
    return face_recognition_models


def model_path() -> str:
    return _quiet_import_models().face_recognition_model_location()


def _rgb(image: np.ndarray) -> np.ndarray:
    """A contiguous (h, w, 3) uint8 view of a grey or RGB image (grey replicated, as dlib does)."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a grey (h, w) or RGB (h, w, 3) image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def face_chip(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """dlib's (150, 150, 3) uint8 chip of the face whose 68 points (original-image x, y) are given.

    dlib's own shape predictor rounds its points to whole pixels; ours are sub-pixel, so they are
    rounded the same way (floor(v + 0.5)) and the chip is the one dlib would cut for its own fit.
    """
    import dlib

    points = np.floor(np.asarray(landmarks68, np.float64).reshape(68, 2) + 0.5).astype(np.int64)
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    shape = dlib.full_object_detection(
        dlib.rectangle(int(left), int(top), int(right), int(bottom)), [dlib.point(int(x), int(y)) for x, y in points]
    )
    return dlib.get_face_chip(_rgb(image), shape, size=CHIP_SIZE, padding=CHIP_PADDING)


@lru_cache(maxsize=1)
def _dlib_encoder():
    import dlib

    return dlib.face_recognition_model_v1(model_path())


def dlib_descriptors(chips: np.ndarray) -> np.ndarray:
    """(n, 128) float32: dlib's own encoder on (n, 150, 150, 3) chips (the reference, for tests and benches)."""
    chips = np.asarray(chips, np.uint8).reshape(-1, CHIP_SIZE, CHIP_SIZE, 3)
    if len(chips) == 0:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    encoder = _dlib_encoder()
    return np.array([encoder.compute_face_descriptor(np.ascontiguousarray(c)) for c in chips], np.float32)


def select_device(device: str = "auto", cuda_available: bool | None = None) -> str:
    """ "auto" is CUDA when torch sees a GPU, else CPU; "cpu", "cuda", "cuda:N" are taken as given."""
    if device != "auto":
        if device != "cpu" and not device.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
        return device
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return "cuda" if cuda_available else "cpu"


class FaceEncoder:
    """dlib's face encoder; the weights are loaded once a process (first use), shared by instances."""

    def __init__(self, device: str = "auto", batch_size: int = 64):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = device
        self.batch_size = batch_size

    def chips(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """(150, 150, 3) uint8: dlib's chip of one face (see face_chip)."""
        return face_chip(image, landmarks68)

    def encode(self, chips: np.ndarray) -> np.ndarray:
        """(n, 128) float32 descriptors of (n, 150, 150, 3) uint8 chips."""
        return dlib_descriptors(chips)


def embed_faces(
    images: Sequence[np.ndarray], landmarks68_list: Sequence[np.ndarray], encoder: FaceEncoder | None = None
) -> np.ndarray:
    """(n, 128) float32: one descriptor a (image, 68 points) pair, chips cut and encoded a batch at a time."""
    encoder = encoder or FaceEncoder()
    if len(images) != len(landmarks68_list):
        raise ValueError(f"{len(images)} images but {len(landmarks68_list)} landmark sets")
    out = np.zeros((len(images), EMBEDDING_DIM), np.float32)
    for start in range(0, len(images), encoder.batch_size):
        stop = min(start + encoder.batch_size, len(images))
        chips = np.stack([encoder.chips(images[i], landmarks68_list[i]) for i in range(start, stop)])
        out[start:stop] = encoder.encode(chips)
    return out
