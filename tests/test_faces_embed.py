"""Face descriptors: FaceEncoder against dlib's own encoder on the same chips, on real faces.

The demo's real LFW faces always run; JAFFE, CK+ frames and FER2013 crops from ../shared/realdata
run when present. Equality is cosine >= 0.999 a face (the figures are printed with -s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import realdata, single_process

from fer_data.demo import DemoFaces
from fer_data.faces import embed, landmarks
from fer_data.faces.process import process_stream
from fer_data.imageio import read_image
from fer_data.sources.base import Sample

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
    for im, p in zip(images[:5], points[:5]):  # cut grey, then put on 3 channels: dlib's chip of the 3-channel copy
        assert np.array_equal(embed.face_chip(im, p), embed.face_chip(np.dstack([im] * 3), p))
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


def test_equal_to_dlib_on_a_colour_portrait():
    from skimage import data

    rgb = data.astronaut()
    grey = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    _, points = _hog_faces([grey], upsample=0)
    chip = embed.face_chip(rgb, points[0])
    assert not (chip[..., 0] == chip[..., 2]).all()  # a colour chip
    ours = embed.FaceEncoder().encode(chip[None])
    assert _compare(ours, embed.dlib_descriptors(chip[None]), "astronaut (colour)").min() >= MIN_COSINE


def _real(kind: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to 24 real faces of one dataset with our 68 points: JAFFE and CK+ frames through dlib's
    HOG detector, FER2013's 48x48 crops as the pipeline treats them (the whole crop is the face)."""
    if kind == "fer2013":
        paths = sorted(realdata("fer2013", "images", "train").glob("*/*.jpg"))[::9][:24]
        images = [read_image(p, colour=True)[0] for p in paths]
        boxes = [(0, 0, im.shape[1] - 1, im.shape[0] - 1) for im in images]
        return images, landmarks.predict_many(images, boxes)
    if kind == "jaffe":
        paths = sorted(realdata("jaffe").glob("*.tiff"))[::3][:24]
    else:
        paths = sorted(realdata("ckplus", "cohn-kanade-images").glob("*/*/*.png"))[::5][:24]
    return _hog_faces([read_image(p)[0] for p in paths], upsample=0)


@pytest.mark.parametrize("kind", ["jaffe", "ckplus", "fer2013"])
def test_equal_to_dlib_on_real_faces(kind):
    images, points = _real(kind)
    assert len(images) >= 15
    encoder = embed.FaceEncoder()
    chips = np.stack([encoder.chips(im, p) for im, p in zip(images, points)])
    assert _compare(encoder.encode(chips), embed.dlib_descriptors(chips), kind).min() >= MIN_COSINE


def test_batches_equal_single_faces(demo_faces):
    images, points = demo_faces
    chips = np.stack([embed.face_chip(im, p) for im, p in zip(images[:8], points[:8])])
    batched = embed.FaceEncoder(batch_size=64).encode(chips)
    single = embed.FaceEncoder(batch_size=1).encode(chips)
    assert _compare(batched, single, "a batch vs one at a time").min() >= 0.99999
    assert np.abs(batched - single).max() <= 1e-5


def _distances(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise descriptor distances of every real face of a subject-labelled set, and same-subject."""
    if kind == "jaffe":
        paths = sorted(realdata("jaffe").glob("*.tiff"))
        subjects = [p.name[:2] for p in paths]
    else:
        paths = sorted(realdata("ckplus", "cohn-kanade-images").glob("*/*/*.png"))
        subjects = [p.parts[-3] for p in paths]
    images, points = _hog_faces([read_image(p)[0] for p in paths], upsample=0)
    assert len(images) == len(paths), "dlib's HOG missed a face"
    vectors = embed.embed_faces(images, points)
    same = np.array(subjects)[:, None] == np.array(subjects)[None]
    return np.linalg.norm(vectors[:, None] - vectors[None], axis=2), same & ~np.eye(len(paths), dtype=bool)


def test_same_person_within_dlibs_threshold_on_ckplus():
    dist, same = _distances("ckplus")
    other = ~same & ~np.eye(len(dist), dtype=bool)
    print(f"CK+ same person median {np.median(dist[same]):.3f}, different people median {np.median(dist[other]):.3f}")
    assert np.median(dist[same]) < embed.SAME_PERSON_DISTANCE < np.median(dist[other])


def test_jaffe_people_are_closer_than_dlibs_threshold():
    """A known weakness of dlib's model, measured: JAFFE's three Japanese women are all within 0.6 of
    each other (different people 0.34-0.55, same person 0.15-0.47). The ranking still holds, so
    clustering needs a tighter threshold or must-links there, not dlib's 0.6."""
    dist, same = _distances("jaffe")
    other = ~same & ~np.eye(len(dist), dtype=bool)
    assert np.median(dist[same]) < np.median(dist[other]) < embed.SAME_PERSON_DISTANCE


def test_empty_batches():
    assert embed.FaceEncoder().encode(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, embed.EMBEDDING_DIM)
    assert embed.embed_faces([], []).shape == (0, embed.EMBEDDING_DIM)


def test_device_selection_without_a_gpu():
    assert embed.select_device("auto", cuda_available=True) == "cuda"
    assert embed.select_device("auto", cuda_available=False) == "cpu"
    assert embed.select_device("cuda:1", cuda_available=False) == "cuda:1"
    assert embed.select_device("cpu", cuda_available=True) == "cpu"
    import torch

    assert embed.FaceEncoder().device == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        embed.select_device("tpu")
    with pytest.raises(ValueError, match="batch_size"):
        embed.FaceEncoder(batch_size=0)


# ---------------------------------------------------------------- curation: the `embedding` column
def _portrait_sample(pixels: np.ndarray, name: str) -> Sample:
    return Sample(
        source="test", locator=name, label_native="happy", label="happy", pixels=pixels, expected_face_fraction=0.25
    )


def test_curated_rows_carry_the_descriptor_of_the_original_face():
    from skimage import data

    rgb = data.astronaut()
    grey_sample = _portrait_sample(rgb.mean(axis=2).astype(np.uint8), "grey.png")
    colour_sample = _portrait_sample(rgb[:, :, ::-1].copy(), "colour.png")  # pixels are BGR, as cv2 decodes
    grey_row, colour_row = process_stream([grey_sample, colour_sample], single_process())
    assert grey_row["aligned"] and colour_row["aligned"]
    points = np.asarray(colour_row["landmarks_original"], np.float64).reshape(68, 2)
    from_rgb = embed.embed_faces([rgb], [points])[0]
    assert _compare(np.array([colour_row["embedding"]]), from_rgb[None], "curated colour row").min() >= MIN_COSINE
    grey_points = np.asarray(grey_row["landmarks_original"], np.float64).reshape(68, 2)
    from_grey = embed.embed_faces([grey_sample.pixels], [grey_points])[0]
    assert _compare(np.array([grey_row["embedding"]]), from_grey[None], "curated grey row").min() >= MIN_COSINE
    assert np.linalg.norm(from_rgb - from_grey) > 1e-3  # the colour row was encoded in colour


def test_embeddings_off_leaves_the_column_null(tmp_path):
    from fer_data.curate import curate
    from fer_data.sources import get

    root = tmp_path / "jaffe"
    get("jaffe").write_demo(root, DemoFaces())
    curate("jaffe", root, tmp_path / "off", single_process(faces={"embeddings": False}))
    curate("jaffe", root, tmp_path / "on", single_process())
    off = pq.read_table(tmp_path / "off" / "curated.parquet")
    on = pq.read_table(tmp_path / "on" / "curated.parquet")
    assert off.column("embedding").null_count == off.num_rows
    aligned = np.array(on.column("aligned").to_pylist())
    nulls = np.array([v is None for v in on.column("embedding").to_pylist()])
    assert aligned.sum() > 20 and (nulls == ~aligned).all()  # every aligned row, and only those
    assert on.schema.field("embedding").type == pa.list_(pa.float32(), embed.EMBEDDING_DIM)
    assert on.drop_columns(["embedding"]).equals(off.drop_columns(["embedding"]))  # nothing else changes


def test_embeddings_param_is_validated():
    with pytest.raises(ValueError, match="faces.embeddings"):
        single_process(faces={"embeddings": "yes"})


def test_hosts_without_dlibs_packages_use_the_cached_arrays(tmp_path, monkeypatch):
    """A GPU host with torch and numpy only: the .npz copied from a machine with face_recognition_models."""
    import shutil

    from fer_data.faces.dlib_format import cache_dir

    cached = sorted(cache_dir().glob("dlib_face_recognition_resnet_model_v1-*.npz"))
    assert cached, "the cache is filled by the tests above"

    def missing() -> str:
        raise ImportError("No module named 'face_recognition_models'")

    monkeypatch.setattr(embed, "model_path", missing)
    monkeypatch.setenv("FER_DATA_CACHE", str(tmp_path))
    with pytest.raises(ImportError, match="copy the .npz"):
        embed.default_arrays.__wrapped__()
    shutil.copy(cached[-1], tmp_path)
    arrays = embed.default_arrays.__wrapped__()
    assert arrays.keys() == embed.default_arrays().keys()
    assert np.array_equal(arrays["fc"], embed.default_arrays()["fc"])


def test_a_file_that_is_not_the_face_network_is_refused(tmp_path):
    data = Path(embed.model_path()).read_bytes()
    (tmp_path / "cut.dat").write_bytes(data[:-1000])
    with pytest.raises(ValueError, match="unreadable network"):
        embed.read_dlib(tmp_path / "cut.dat")
    (tmp_path / "other.dat").write_bytes(b"\x01\x01\x07affine_")
    with pytest.raises(ValueError, match="loss_metric_2"):
        embed.read_dlib(tmp_path / "other.dat")
