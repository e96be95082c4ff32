"""Face descriptors: FaceEncoder against dlib's own encoder on the same chips, on real faces.

The demo's real LFW faces always run; JAFFE, CK+ frames and FER2013 crops from ../shared/realdata
run when present. Equality is cosine >= 0.999 a face (the figures are printed with -s).
"""

from __future__ import annotations

import numpy as np
import pytest

from fer_data.demo import DemoFaces
from fer_data.faces import embed, landmarks

#: The issue's bar for "equal to dlib's descriptors".
MIN_COSINE = 0.999


def _hog_faces(images: list[np.ndarray], upsample: int = 1) -> tuple[list[np.ndarray], np.ndarray]:
    """The images where dlib's HOG finds a face, and that face's 68 points (our batched fit)."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    kept, boxes = [], []
    for im in images:
        dets = detector(im, upsample)
        if dets:
            r = max(dets, key=lambda d: d.area())
            kept.append(im)
            boxes.append((r.left(), r.top(), r.right(), r.bottom()))
    return kept, landmarks.predict_many(kept, boxes)


@pytest.fixture(scope="module")
def demo_faces() -> tuple[list[np.ndarray], np.ndarray]:
    demo = DemoFaces()
    images, points = _hog_faces([demo.portrait(i, 256) for i in range(0, len(demo), 4)])
    assert len(images) >= 15
    return images, points


def _compare(ours: np.ndarray, theirs: np.ndarray, what: str) -> np.ndarray:
    cos = (ours * theirs).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    print(f"{what}: {len(cos)} faces, min cosine {cos.min():.7f}, max |diff| {np.abs(ours - theirs).max():.2e}")
    return cos


def test_chips_are_dlib_colour_chips(demo_faces):
    images, points = demo_faces
    chip = embed.FaceEncoder().chips(images[0], points[0])
    assert chip.shape == (embed.CHIP_SIZE, embed.CHIP_SIZE, 3) and chip.dtype == np.uint8
    assert (chip[..., 0] == chip[..., 1]).all() and (chip[..., 1] == chip[..., 2]).all()  # a grey image stays grey
    colour = np.stack([images[0], images[0] // 2, 255 - images[0]], axis=2)
    rgb = embed.face_chip(colour, points[0])
    assert (rgb[..., 0] == chip[..., 0]).all() and not (rgb[..., 1] == chip[..., 1]).all()


def test_embed_faces_equals_dlib_on_demo_faces(demo_faces):
    images, points = demo_faces
    encoder = embed.FaceEncoder(batch_size=8)
    ours = embed.embed_faces(images, points, encoder)
    chips = np.stack([encoder.chips(im, p) for im, p in zip(images, points)])
    theirs = embed.dlib_descriptors(chips)
    assert ours.shape == (len(images), embed.EMBEDDING_DIM) and ours.dtype == np.float32
    assert _compare(ours, theirs, "demo").min() >= MIN_COSINE


def test_empty_batches():
    assert embed.FaceEncoder().encode(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, embed.EMBEDDING_DIM)
    assert embed.embed_faces([], []).shape == (0, embed.EMBEDDING_DIM)


def test_device_selection_without_a_gpu():
    assert embed.select_device("auto", cuda_available=True) == "cuda"
    assert embed.select_device("auto", cuda_available=False) == "cpu"
    assert embed.select_device("cuda:1", cuda_available=False) == "cuda:1"
    assert embed.select_device("cpu", cuda_available=True) == "cpu"
    with pytest.raises(ValueError, match="device"):
        embed.select_device("tpu")
    with pytest.raises(ValueError, match="batch_size"):
        embed.FaceEncoder(batch_size=0)
