"""Alignment checked on real faces: eye positions, eye line, and an independent re-detection.

Shapes and counts are not enough: swapping face_recognition's `left_eye` (image-left) with the
person's left eye turns every aligned face upside down while every array still has the right
shape. So these tests look at where the eyes really end up, and re-run the detector and the
landmark predictor on the aligned output, which finds an upright face only if it is one.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from support import image_of, realdata, single_process

from fer_data.demo import DemoFaces
from fer_data.faces import align
from fer_data.faces import landmarks as lm
from fer_data.faces.detect import detect_faces
from fer_data.faces.process import process
from fer_data.sources.base import Reject, Sample

LARGE = 160
PARAMS = single_process(align={"extra_size": LARGE}, faces={"embeddings": False})  # embeddings: test_faces_embed


def _eyes(flat: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return lm.eye_centres(np.asarray(flat, dtype=np.float64).reshape(68, 2))


def _check_row(row: dict) -> None:
    size = row["width"]
    left, right = _eyes(row["landmarks"])
    assert np.abs(left - np.array(PARAMS.align.eye_left) * size).max() < 1.0
    assert np.abs(right - np.array(PARAMS.align.eye_right) * size).max() < 1.0
    pts = np.asarray(row["landmarks"]).reshape(68, 2)
    assert abs(math.degrees(math.atan2(*(right - left)[::-1]))) < 2.0
    # upright: nose tip below the eyes, mouth below the nose, chin lowest
    assert left[1] < pts[lm.NOSE_TIP, 1] < pts[lm.MOUTH, 1].mean() < pts[8, 1]
    # in the original image the image-left eye (36-41) really is on the left
    orig_l, orig_r = _eyes(row["landmarks_original"])
    assert orig_l[0] < orig_r[0]
    _check_redetected(image_of(row, large=True))


def _check_redetected(aligned: np.ndarray) -> None:
    """Independent check: dlib finds an upright face in the output with its eyes on target."""
    dets = detect_faces(aligned, 0.6, PARAMS.faces)
    assert dets, "no upright face found in the aligned image"
    pts = lm.predict(aligned, dets[0].box)
    left, right = lm.eye_centres(pts)
    target_l = np.array(PARAMS.align.eye_left) * LARGE
    target_r = np.array(PARAMS.align.eye_right) * LARGE
    tol = 0.06 * LARGE  # the predictor's own error on a re-fit, a few pixels at 160 px
    assert np.linalg.norm(left - target_l) < tol and np.linalg.norm(right - target_r) < tol
    assert abs(math.degrees(math.atan2(*(right - left)[::-1]))) < 5.0


def _sample(grey: np.ndarray, name: str, fraction: float = 0.5) -> Sample:
    return Sample(
        source="test", locator=name, label_native="x", label="happiness", pixels=grey, expected_face_fraction=fraction
    )


@pytest.mark.parametrize("angle", [-20, 0, 15])
def test_demo_faces_align_upright(angle):
    faces = DemoFaces(seed=1)
    aligned = 0
    for i in range(0, 20, 2):
        upright = faces.portrait(i, 256, face_fraction=0.5)
        m = cv2.getRotationMatrix2D((128, 128), angle, 1.0)
        grey = cv2.warpAffine(upright, m, (256, 256), borderMode=cv2.BORDER_REPLICATE)
        row = process(_sample(grey, f"demo{i}"), PARAMS)
        base = process(_sample(upright, f"demo{i}"), PARAMS)
        if isinstance(row, Reject) or isinstance(base, Reject):
            continue
        aligned += 1
        _check_row(row)
        # the input was turned counter-clockwise by `angle`: the measured roll follows (y points down)
        assert abs((row["roll_deg"] - base["roll_deg"]) + angle) < 8
    assert aligned >= 7


def test_astronaut_portrait():
    grey = DemoFaces().astronaut
    row = process(_sample(grey, "astronaut", fraction=0.18), PARAMS)
    assert not isinstance(row, Reject), row
    _check_row(row)
    assert row["n_faces"] == 1 and 70 < row["face_size"] < 110


def test_upside_down_face_is_not_aligned_as_if_upright():
    """A flipped input must not produce a row whose landmarks claim an upright face."""
    grey = DemoFaces().astronaut[::-1].copy()
    row = process(_sample(grey, "flipped", fraction=0.18), PARAMS)
    assert isinstance(row, Reject)


def test_real_jaffe_faces_align():
    root = realdata("jaffe")
    for path in sorted(root.glob("*.tiff"))[::6]:
        s = Sample(source="jaffe", locator=path.name, label_native="x", label="neutral", path=str(path))
        row = process(s, PARAMS)
        assert not isinstance(row, Reject), (path.name, row)
        _check_row(row)


def test_real_ckplus_frames_align():
    root = realdata("ckplus", "cohn-kanade-images")
    frames = sorted(root.rglob("*.png"))[::8][:6]
    for path in frames:
        s = Sample(
            source="ckplus",
            locator=path.name,
            label_native="x",
            label="neutral",
            path=str(path),
            expected_face_fraction=0.45,
        )
        row = process(s, PARAMS)
        assert not isinstance(row, Reject), (path.name, row)
        _check_row(row)


def test_quality_metrics_are_plausible():
    grey = DemoFaces().astronaut
    row = process(_sample(grey, "astronaut", fraction=0.18), PARAMS)
    blurred = process(_sample(cv2.GaussianBlur(grey, (0, 0), 2.5), "blur", fraction=0.18), PARAMS)
    assert row["sharpness"] > blurred["sharpness"] > 0
    assert 0 < row["brightness"] < 255 and row["contrast"] > 5
    assert -0.5 < row["yaw"] < 0.5 and row["det_score"] > 0


def test_shape_residual_flags_scrambled_fits_but_not_real_expressions():
    from fer_data.faces import quality

    grey = DemoFaces().astronaut
    row = process(_sample(grey, "astronaut", fraction=0.18), PARAMS)
    pts = np.asarray(row["landmarks_original"], dtype=np.float64).reshape(68, 2)
    assert quality.shape_residual(pts) < 0.18
    twisted = pts.copy()
    twisted[0:17] = twisted[0:17][::-1] + np.array([0, -40])  # jaw flipped up into the face
    assert quality.shape_residual(twisted) > 0.22
    assert "face shape" in quality.landmark_problem(twisted, tuple(row["bbox"]), 0.0, 1.0, 90.0)


def test_real_fer2013_crops_a_minority_of_fits_is_flagged():
    """48x48 crops: most fits are good, a real minority is not (kept unaligned by default)."""
    from collections import Counter

    files = sorted(realdata("fer2013", "images", "train").rglob("*.jpg"))
    outcome = Counter()
    for path in files:
        s = Sample(
            source="fer2013", locator=path.name, label_native="x", label="anger", path=str(path), precropped=True
        )
        row = process(s, PARAMS)
        if isinstance(row, Reject):  # FER2013's blank frames are not faces (issue #9)
            assert row.reason == "no_face_in_crop" and "uniform" in row.detail, row
            outcome["no_face_in_crop"] += 1
            continue
        outcome["aligned" if row["aligned"] else "unaligned"] += 1
    assert outcome["no_face_in_crop"] <= 2, outcome
    share = outcome["unaligned"] / len(files)
    assert 0.02 < share < 0.3, outcome


def test_an_image_without_a_face_is_rejected_with_no_face():
    noise = np.random.default_rng(3).integers(0, 256, (256, 256), dtype=np.uint8)
    flat = np.full((256, 256), 128, np.uint8)
    for grey, name in ((noise, "noise"), (flat, "flat")):
        out = process(_sample(grey, name), PARAMS)
        assert isinstance(out, Reject) and out.reason == "no_face" and out.locator == name, out


@pytest.mark.parametrize("scale, angle", [(1.0, 0.0), (0.7, 12.0), (2.5, -25.0), (0.3, 8.0), (0.12, -15.0)])
def test_warped_pixels_put_the_eyes_where_the_transform_says(scale, angle):
    """The image itself, not just the landmarks: two bright dots placed as eyes in a frame land on
    the eye targets after warp(), through both paths (plain warp, and pre-shrink below 0.5x)."""
    from fer_data.faces import align

    size = PARAMS.align.size
    target_l = np.array(PARAMS.align.eye_left) * size
    target_r = np.array(PARAMS.align.eye_right) * size
    eye_gap = (target_r - target_l)[0] / scale  # source distance that maps onto the target gap
    h = w = int(eye_gap * 3) + 40
    centre = np.array([w / 2, h / 2])
    turn = np.deg2rad(angle)
    half = 0.5 * eye_gap * np.array([np.cos(turn), np.sin(turn)])
    src_l, src_r = centre - half, centre + half
    yy, xx = np.mgrid[0:h, 0:w]
    sigma = max(0.8, 1.2 / scale)  # in the output a dot is 1.2-2 px wide, whatever the scale
    frame = sum(np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * sigma**2)) for p in (src_l, src_r))
    grey = np.clip(frame * 255, 0, 255).astype(np.uint8)

    m = align.similarity(src_l, src_r, target_l, target_r)
    np.testing.assert_allclose(align.transform_points(m, np.array([src_l, src_r])), [target_l, target_r], atol=1e-9)
    out = align.warp(grey, m, size).astype(np.float64)
    r = int(np.ceil(3.5 * sigma * scale))  # the window holds the whole dot, so its centroid is unbiased
    for target in (target_l, target_r):
        x0, y0 = (int(round(v)) for v in target)
        win = out[y0 - r : y0 + r + 1, x0 - r : x0 + r + 1]
        wy, wx = np.mgrid[y0 - r : y0 + r + 1, x0 - r : x0 + r + 1]
        # warpAffine samples pixel centres at integer coordinates, as transform_points assumes
        found = np.array([(win * wx).sum(), (win * wy).sum()]) / win.sum()
        assert np.abs(found - target).max() < 0.2, (found, target)


# --- borders: pixels from outside the frame ---------------------------------------------------


def test_outside_fraction_is_the_share_of_output_mapped_from_outside():
    assert align.outside_fraction(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (48, 48), 48) == 0.0
    shifted = np.array([[1.0, 0, 24], [0, 1.0, 0]])  # output x = source x + 24: the left half has no source
    assert align.outside_fraction(shifted, (48, 48), 48) == pytest.approx(0.5)
    half = np.array([[0.5, 0, 12], [0, 0.5, 12]])  # the whole frame shrunk into the middle quarter
    assert align.outside_fraction(half, (48, 48), 48) == pytest.approx(1 - (24 / 48) ** 2, abs=0.05)


@pytest.mark.parametrize("border", ["edge", "reflect", "constant"])
def test_border_fill_changes_only_the_outside_pixels(border):
    grey = np.tile(np.arange(10, 58, dtype=np.uint8), (48, 1))  # a horizontal ramp: each column its own level
    shifted = np.array([[1.0, 0, 8], [0, 1.0, 0]])  # output columns 0..7 come from outside the frame
    out = align.warp(grey, shifted, 48, border)
    assert np.array_equal(out[:, 8:], grey[:, :40])  # inside: the frame itself, whatever the fill
    fill = out[:, :8]
    expected = {
        "edge": np.full((48, 8), 10),  # the first column repeated
        "reflect": grey[:, 8:0:-1],  # mirrored about the first column (not repeating it)
        "constant": np.full((48, 8), align.CONSTANT_FILL),
    }[border]
    assert np.array_equal(fill, expected)


def test_curated_rows_record_outside_fraction_and_use_the_border_param():
    """A tight crop aligned: part of the output comes from outside it; only that part depends on the border."""
    faces = DemoFaces(0)
    crop = cv2.resize(faces.face(3, 64)[6:58, 6:58], (48, 48))
    sample = Sample("t", "crop.png", None, "happiness", pixels=crop, precropped=True)
    rows = {b: process(sample, single_process(align={"border": b})) for b in ("edge", "constant")}
    assert all(isinstance(r, dict) and r["aligned"] for r in rows.values())
    assert rows["edge"]["outside_fraction"] == rows["constant"]["outside_fraction"] > 0
    edge, constant = (image_of(rows[b]).astype(int) for b in ("edge", "constant"))
    differ = (edge != constant).mean()
    assert 0 < differ <= rows["edge"]["outside_fraction"] + 0.05
