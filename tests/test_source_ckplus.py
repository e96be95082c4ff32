"""CK+: frame thresholding along sequences, provided landmarks, and broken label/landmark files."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from support import realdata, rows, single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.faces.process import process
from fer_data.sources import get
from fer_data.sources.base import Reject, Sample
from fer_data.sources.ckplus import frame_count, parse_emotion

ALL8 = {"labels": {"target_set": "all8"}}


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "ckplus"
    get("ckplus").write_demo(root, DemoFaces())
    return root


@pytest.fixture
def tree(demo_tree, tmp_path) -> Path:
    """A private copy of the demo tree that a test may break."""
    return Path(shutil.copytree(demo_tree, tmp_path / "ckplus"))


def _by_frame(items, sequence: str) -> dict[int, Sample | Reject]:
    out = {}
    for item in items:
        if isinstance(item, Sample) and item.sequence_id == sequence:
            out[item.frame_index] = item
        elif isinstance(item, Reject) and f"/{sequence}/" in item.locator:
            out[int(Path(item.locator).stem.split("_")[2])] = item
    return out


def test_real_ckplus_first_frames_neutral_peak_frames_labelled_and_landmarks_agree():
    root = realdata("ckplus")
    items = list(get("ckplus")(root))
    assert len(items) == 122 and all(isinstance(i, Sample) for i in items)
    # Only frame 1 and the peak frame of each sequence are present; Landmarks/ gives the true length.
    assert all(i.label == "neutral" and i.label_native == "0" for i in items if i.frame_index == 1)
    peaks = [i for i in items if i.frame_index != 1]
    assert len(peaks) == 61
    assert Counter(i.label for i in peaks) == {
        "surprise": 16,
        "anger": 13,
        "happiness": 13,
        "disgust": 10,
        "sadness": 5,
        "fear": 4,
    }
    assert len({i.subject_id for i in items}) == 20 and {"S005", "S032", "S053"} <= {i.subject_id for i in items}
    s032 = {i.frame_index: i for i in items if i.sequence_id == "S032/005"}
    assert sorted(s032) == [1, 16] and s032[16].label == "disgust" and s032[16].label_native == "3"
    assert all(i.provided_landmarks is not None and i.provided_landmarks.shape == (68, 2) for i in items)

    # Face work on every other frame (61, both kinds, all subjects) keeps the test quick.
    params = single_process(**ALL8)
    got = [process(i, params) for i in items[::2]]
    assert all(isinstance(r, dict) and r["aligned"] for r in got)
    nme = sorted(r["provided_landmarks_nme"] for r in got)
    for item, r in zip(items[::2], got):  # CK+'s own points are kept beside ours
        np.testing.assert_allclose(np.reshape(r["landmarks_provided"], (68, 2)), item.provided_landmarks, atol=1e-4)
    assert nme[-1] < 0.1 and nme[len(nme) // 2] < 0.06  # dlib's fit agrees with CK+'s AAM tracks
    assert {r["sequence_id"] for r in got} >= {"S005/001", "S053/004"}


def test_demo_tree_labels_by_position_in_the_sequence(demo_tree):
    items = list(get("ckplus")(demo_tree))
    assert len(items) == 32
    full = _by_frame(items, "S010/001")  # 10 frames: 2 neutral, 5 between, 3 happy
    assert [full[f].label for f in (1, 2)] == ["neutral", "neutral"]
    assert [full[f].label for f in (8, 9, 10)] == ["happiness"] * 3
    assert all(full[f].reason == "between_neutral_and_peak" for f in range(3, 8))
    assert "frame 3 of 10" in full[3].detail
    sparse = _by_frame(items, "S010/002")  # only frames 1 and 12 of 12 present
    assert sorted(sparse) == [1, 12] and sparse[1].label == "neutral" and sparse[12].label == "surprise"
    unlabelled = _by_frame(items, "S011/002")
    assert len(unlabelled) == 6 and all(isinstance(i, Sample) and i.label is None for i in unlabelled.values())
    assert full[1].subject_id == "S010" and full[1].sequence_id == "S010/001"
    assert full[1].locator == "cohn-kanade-images/S010/001/S010_001_00000001.png"


def test_demo_tree_curates_end_to_end(demo_tree, tmp_path):
    metrics = curate("ckplus", demo_tree, tmp_path / "out", single_process(**ALL8))
    assert metrics["curated_by_label"] == {"neutral": 6, "happiness": 3, "surprise": 1, "anger": 2, "contempt": 2}
    assert metrics["rejected_by_reason"] == {"between_neutral_and_peak": 12, "unlabelled": 6}
    got = rows(tmp_path / "out" / "curated.parquet")
    assert all(r["provided_landmarks_nme"] is not None and r["provided_landmarks_nme"] < 0.2 for r in got)
    assert all(len(r["landmarks_provided"]) == 136 for r in got)
    assert {(r["orig_width"], r["orig_height"]) for r in got} == {(640, 490), (640, 480)}


def test_params_counts_fractions_and_unlabelled_as_neutral(demo_tree):
    src = get("ckplus")(demo_tree, {"neutral_frames": 1, "peak_frames": 1, "unlabelled_as_neutral": True})
    items = list(src)
    full = _by_frame(items, "S010/001")
    assert full[1].label == "neutral" and full[10].label == "happiness"
    assert all(isinstance(full[f], Reject) for f in range(2, 10))
    unlabelled = _by_frame(items, "S011/002")
    assert unlabelled[1].label == "neutral" and all(unlabelled[f].label is None for f in range(2, 7))
    assert [frame_count(v, 10) for v in (0, 0.2, 0.25, 0.01, 1, 3, 50)] == [0, 2, 3, 1, 1, 3, 10]
    with pytest.raises(ValueError):
        get("ckplus")(demo_tree, {"peak_frames": -1})


def test_sequences_are_shard_keys(demo_tree):
    src = get("ckplus")(demo_tree)
    assert list(src.keys()) == ["S010/001", "S010/002", "S011/001", "S011/002", "S012/001"]
    shards = src.shards(max_items=2, min_shards=1)
    assert [len(s["keys"]) for s in shards] == [2, 2, 1]
    assert [i.locator for s in shards for i in src.iter_shard(s)] == [i.locator for i in src]


def test_emotion_file_parsing():
    assert parse_emotion("   3.0000000e+00\n") == 3
    for bad in ("", "happy", "3 4", "2.5", "nan"):
        with pytest.raises(ValueError):
            parse_emotion(bad)


def test_broken_label_and_landmark_files_become_rejects_or_warnings(tree, tmp_path, caplog):
    emotion = tree / "Emotion"
    (emotion / "S010/001/S010_001_00000010_emotion.txt").write_text("happy\n")
    (emotion / "S011/001/S011_001_00000008_emotion.txt").write_text("   9.0000000e+00\n")
    (emotion / "S012/001/S012_001_00000006_emotion.txt").write_text("")
    (emotion / "S099/001").mkdir(parents=True)  # a label for a sequence that has no frames
    (emotion / "S099/001/S099_001_00000005_emotion.txt").write_text("   1.0000000e+00\n")
    lm = tree / "Landmarks/S010/002/S010_002_00000012_landmarks.txt"
    lm.write_text("".join(lm.read_text().splitlines(keepends=True)[:60]))
    frames = tree / "cohn-kanade-images/S011/002"
    (frames / "S011_002_00000003.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    shutil.copy(frames / "S011_002_00000001.png", frames / "snapshot.png")
    with caplog.at_level(logging.WARNING, logger="fer_data.sources.ckplus"):
        metrics = curate("ckplus", tree, tmp_path / "out", single_process(**ALL8))
    assert "S010_002_00000012_landmarks.txt" in caplog.text and "without provided landmarks" in caplog.text
    rej = rows(tmp_path / "out" / "rejects.parquet")
    reasons = Counter(r["reason"] for r in rej)
    assert reasons["bad_label_file"] == 10 + 6 and reasons["unknown_label"] == 8
    assert reasons["missing_image"] == 1 and reasons["unparseable_name"] == 1
    by_loc = {r["locator"]: r for r in rej}
    assert "S010_001_00000010_emotion.txt" in by_loc["cohn-kanade-images/S010/001/S010_001_00000004.png"]["detail"]
    assert by_loc["Emotion/S099/001/S099_001_00000005_emotion.txt"]["reason"] == "missing_image"
    assert by_loc["cohn-kanade-images/S011/002/S011_002_00000003.png"]["reason"] == "unlabelled"  # label first
    got = {r["locator"]: r for r in rows(tmp_path / "out" / "curated.parquet")}
    peak = got["cohn-kanade-images/S010/002/S010_002_00000012.png"]
    assert peak["label"] == "surprise" and peak["provided_landmarks_nme"] is None  # kept, without landmarks
    assert metrics["curated"] == 2 and metrics["read"] == 32 + 2


def test_unreadable_frame_and_emotion_labels_folder_name(tree, tmp_path):
    (tree / "Emotion").rename(tree / "Emotion_labels")
    shutil.rmtree(tree / "Landmarks")  # without landmarks the length comes from the frames present
    (tree / "cohn-kanade-images/S010/001/S010_001_00000009.png").write_bytes(b"not a png")
    metrics = curate("ckplus", tree, tmp_path / "out", single_process(**ALL8))
    rej = {r["locator"]: r["reason"] for r in rows(tmp_path / "out" / "rejects.parquet")}
    assert rej["cohn-kanade-images/S010/001/S010_001_00000009.png"] == "unreadable_image"
    # S010/002 now looks 12 frames long only through its emotion file's frame number.
    assert metrics["curated_by_label"]["surprise"] == 1 and metrics["curated_by_label"]["happiness"] == 2
    got = rows(tmp_path / "out" / "curated.parquet")
    assert all(r["provided_landmarks_nme"] is None for r in got)
