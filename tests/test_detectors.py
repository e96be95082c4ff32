"""Detection backends and the scale choice."""

import cv2
import numpy as np
import pytest
from support import single_process

from fer_data.demo import DemoFaces
from fer_data.faces.detect import BACKENDS, Detection, choose_face, detect_faces, detection_scale
from fer_data.params import FaceParams


def test_scale_follows_expected_face_size():
    p = FaceParams()
    px = p.target_face_px
    assert detection_scale((490, 640), 0.45, p) == pytest.approx(px / (0.45 * 490))  # CK+: shrink
    assert detection_scale((48, 48), 1.0, p) == pytest.approx(px / 48)  # FER2013: grow
    assert detection_scale((2 * px, 2 * px), 0.5, p) == 1.0  # already right: no resize
    assert detection_scale((20, 20), 1.0, p) == p.max_upscale


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_each_backend_finds_the_real_face(backend):
    grey = DemoFaces().astronaut
    dets = detect_faces(grey, 0.18, single_process(faces={"detector": backend}).faces)
    assert len(dets) == 1
    (l, t, r, b), score = dets[0].box, dets[0].score
    assert 150 < (l + r) / 2 < 300 and 60 < (t + b) / 2 < 200 and score > 0  # her face, upper middle


def test_no_face_in_a_textured_non_face():
    noise = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8), (0, 0), 2)
    assert detect_faces(noise, 0.5, FaceParams()) == []


def test_two_faces_largest_first_and_side_choice():
    faces = DemoFaces()
    frame = faces.compose(480, 240, [(1, 120, 120, 110), (2, 360, 120, 140)])
    dets = detect_faces(frame, 0.5, FaceParams())
    assert len(dets) == 2 and dets[0].area >= dets[1].area
    assert choose_face(dets, "left", 480).centre_x < 240
    assert choose_face(dets, "right", 480).centre_x > 240
    assert choose_face(dets, None, 480) == dets[0]
    lone = [Detection((300, 10, 400, 110), 1.0)]
    assert choose_face(lone, "left", 480) is None  # only the other person: not theirs to keep
    assert choose_face(lone, "right", 480) == lone[0] and choose_face(lone, None, 480) == lone[0]
