"""The batched landmark evaluator against dlib's own predictor, on real faces.

Same model file, same arithmetic in the same order (float32 shape, double box mapping, leaves
added tree by tree): dlib rounds its output to whole pixels, so after rounding the faces agree
point for point.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image
from support import REALDATA

from fer_data.demo import DemoFaces
from fer_data.faces import ert


@pytest.fixture(scope="module")
def dlib_predictor():
    import dlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition_models
    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def _faces() -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:
    """Real faces with dlib HOG boxes: the demo's LFW crops and portraits, plus real JAFFE when present."""
    import dlib

    demo = DemoFaces()
    images = [demo.portrait(i, 256) for i in range(0, len(demo), 4)]
    images += [demo.face(i, 48) for i in range(0, len(demo), 4)]
    images += [np.asarray(Image.open(p).convert("L")) for p in sorted((REALDATA / "jaffe").glob("*.tiff"))[:30]]
    detector = dlib.get_frontal_face_detector()
    out, boxes = [], []
    for im in images:
        dets = detector(im, 0) if im.shape[0] > 100 else []
        r = dets[0] if dets else None
        out.append(im)
        boxes.append((r.left(), r.top(), r.right(), r.bottom()) if r else (0, 0, im.shape[1] - 1, im.shape[0] - 1))
    return out, boxes


def test_batched_fit_equals_dlib_up_to_rounding(dlib_predictor):
    import dlib

    images, boxes = _faces()
    ours = ert.predict(images, boxes)
    theirs = np.array(
        [[(p.x, p.y) for p in dlib_predictor(im, dlib.rectangle(*b)).parts()] for im, b in zip(images, boxes)]
    )
    assert ours.shape == theirs.shape == (len(images), 68, 2)
    per_face = np.abs(np.rint(ours) - theirs).max(axis=(1, 2))
    assert (per_face == 0).mean() >= 0.95, per_face  # identical after dlib's rounding (all, here)
    assert per_face.max() <= 1, per_face
    assert np.abs(ours - theirs).mean() < 0.3  # rounding alone is 0.25 on average


def test_batch_composition_does_not_change_a_face():
    images, boxes = _faces()
    together = ert.predict(images, boxes)
    alone = np.stack([ert.predict([im], [b])[0] for im, b in zip(images[:6], boxes[:6])])
    np.testing.assert_array_equal(together[:6], alone)
    assert ert.predict([], []).shape == (0, 68, 2)


def test_model_layout_and_cache_round_trip(tmp_path, monkeypatch):
    model = ert.default_model()
    assert model.initial.shape == (68, 2) and model.trees == 500 and len(model.idx1) == 15
    assert model.leaves.shape == (15, 500 * ert.LEAVES, 136) and model.delta.shape == (15, 500, 2)
    assert model.idx1.max() < model.anchor.shape[1] and model.anchor.max() < 68

    # A tiny hand-made model file in dlib's format: parsed, cached atomically, reloaded equal.
    path = tmp_path / "tiny.dat"
    path.write_bytes(_tiny_model_bytes())
    monkeypatch.setenv("FER_DATA_CACHE", str(tmp_path / "cache"))
    first = ert.load(path)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"tiny-{path.stat().st_size}-v{ert.CACHE_FORMAT}.npz"]
    second = ert.load(path)
    for field in ert.Model.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    np.testing.assert_allclose(first.initial, [[0.25, 0.5], [0.75, -0.5]])
    assert first.thresh[0, 0] == -3.0 and first.idx2[0, 1] == 1


@pytest.mark.parametrize("pixel, leaf", [(0, 3), (2, 1), (4, 1), (5, 0), (10, 0)])  # 0 and 4: ">" is strict
def test_tiny_model_walks_its_tree_the_way_dlib_does(tmp_path, monkeypatch, pixel, leaf):
    """Worked by hand: feature 0 sits at (3, 4) of an 8-pixel box, feature 1 outside the image
    (so 0); every split compares f0 - f1 > -3 + node and goes left when true; leaf i adds i/16
    to landmark 0's x in box units."""
    path = tmp_path / "tiny.dat"
    path.write_bytes(_tiny_model_bytes())
    monkeypatch.setenv("FER_DATA_CACHE", str(tmp_path / "cache"))
    model = ert.load(path)
    image = np.zeros((12, 12), np.uint8)
    image[4, 3] = pixel
    points = ert.predict([image], [(0, 0, 8, 8)], model)[0]
    np.testing.assert_allclose(points, [[(0.25 + leaf / 16) * 8, 4.0], [6.0, -4.0]])


def test_a_file_that_is_not_a_predictor_is_refused(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"\x01\x02" + b"\x00" * 10)
    with pytest.raises(ValueError, match="not a dlib shape_predictor"):
        ert.read_dlib(bad)


# ---------------------------------------------------------------- dlib's serialisation, by hand
def _int(v: int) -> bytes:
    body = abs(v).to_bytes(max(1, (abs(v).bit_length() + 7) // 8), "little") if v else b""
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def _float(x: float) -> bytes:
    mantissa, exponent = float(x).as_integer_ratio()
    shift = exponent.bit_length() - 1  # denominator 2**shift
    return _int(mantissa) + _int(-shift)


def _matrix(values: list[float]) -> bytes:
    return _int(-len(values)) + _int(-1) + b"".join(_float(v) for v in values)


def _tiny_model_bytes() -> bytes:
    """Two landmarks, one cascade of one depth-4 tree, two feature pixels."""
    out = _int(1) + _matrix([0.25, 0.5, 0.75, -0.5])
    out += _int(1) + _int(1)  # one cascade, one tree
    out += _int(ert.SPLITS) + b"".join(_int(0) + _int(1) + _float(-3.0 + i) for i in range(ert.SPLITS))
    out += _int(ert.LEAVES) + b"".join(_matrix([i / 16, 0.0, 0.0, 0.0]) for i in range(ert.LEAVES))
    out += _int(1) + _int(2) + _int(0) + _int(1)  # anchors
    out += _int(1) + _int(2) + b"".join(_float(v) for v in (0.125, 0.0, -0.125, 0.0))  # deltas
    return out
