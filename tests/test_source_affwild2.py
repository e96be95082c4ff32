"""Aff-Wild2 source: demo videos end to end, frame numbering, both annotation layouts, and every malformed input."""

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from support import rows, single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces, write_image
from fer_data.sources import get
from fer_data.sources.affwild2 import MAX_LINE_REJECTS, AffWild2, select_frames, write_annotation
from fer_data.sources.base import Reject, Sample

HEADER8 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
HEADER7 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise"
NEW = Path("annotations") / "EXPR_Classification_Challenge"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("affwild2")
    get("affwild2").write_demo(root, DemoFaces())
    return root


def level_video(path: Path, n: int, fourcc: str = "MJPG", size=(64, 48)) -> None:
    """A video whose frame t (0-based) is a flat grey of level 20 + 4t: frames identify themselves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, size, True)
    for t in range(n):
        writer.write(np.full((size[1], size[0], 3), 20 + 3 * t, np.uint8))
    writer.release()


def level_of(frame_number: int) -> int:
    return 20 + 3 * (frame_number - 1)


def annotate(root: Path, name: str, codes, header=HEADER8, set_dir="Train_Set", base=NEW) -> str:
    path = root / base / set_dir / f"{name}.txt"
    write_annotation(path, header, list(codes))
    return path.relative_to(root).as_posix()


def split_items(items):
    samples = [i for i in items if isinstance(i, Sample)]
    rejects = [i for i in items if isinstance(i, Reject)]
    return samples, rejects


def read_codes(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split("\n")[1:] if x.strip()]


# --- demo tree -----------------------------------------------------------------------------


def test_demo_videos_decode_back_with_their_frame_counts(demo_root):
    for name, n in (("demo_001.mp4", 48), ("demo_002.avi", 40), ("demo_003.mp4", 40)):
        cap = cv2.VideoCapture(str(demo_root / "videos" / name))
        assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
        decoded = 0
        while cap.grab():
            decoded += 1
        cap.release()
        assert decoded == n
    assert len(list((demo_root / "cropped_aligned" / "demo_004").glob("*.jpg"))) == 29  # frame 11 left out
    size = sum(p.stat().st_size for p in demo_root.rglob("*") if p.is_file())
    assert size < 2_000_000


def test_demo_tree_curates_end_to_end(demo_root, tmp_path):
    stride = 5
    metrics = curate(
        "affwild2", demo_root, tmp_path / "out", single_process(sources={"affwild2": {"frame_stride": stride}})
    )
    # What the annotation files say, computed independently of the source.
    expected_other = expected_samples = videos_with_unannotated = 0
    for txt in sorted((demo_root / NEW).rglob("*.txt")):
        codes = read_codes(txt)
        selected = [codes[n - 1] for n in range(1, len(codes) + 1, stride) if codes[n - 1] >= 0]
        expected_samples += len(selected)
        expected_other += sum(c == 7 for c in selected)
        videos_with_unannotated += -1 in codes
    by_reason = metrics["rejected_by_reason"]
    assert by_reason["not_an_emotion"] == expected_other
    assert by_reason["unannotated"] == videos_with_unannotated  # one summary row per video
    assert by_reason["missing_frame"] == 1  # demo_004 frame 11
    assert metrics["read"] == expected_samples + videos_with_unannotated
    emotion_frames = expected_samples - expected_other - 1
    assert metrics["curated"] >= 0.8 * emotion_frames
    got = rows(tmp_path / "out" / "curated.parquet")
    for r in got:
        assert r["subject_id"] == r["sequence_id"]
        assert r["split"] == {"Train_Set": "train", "Validation_Set": "val"}[r["split_original"]]
        assert (r["frame_index"] - 1) % stride == 0
        if r["sequence_id"] == "demo_004":
            assert r["detector"] == "precropped" and (r["orig_width"], r["orig_height"]) == (112, 112)
            assert r["locator"] == f"cropped_aligned/demo_004/{r['frame_index']:05d}.jpg"
        else:
            assert (r["orig_width"], r["orig_height"]) == (320, 240) and r["detector"] == "hog"
    # the two-person video: each annotation keeps the face on its side of the shared frame
    left = [r for r in got if r["sequence_id"] == "demo_003_left"]
    right = [r for r in got if r["sequence_id"] == "demo_003_right"]
    assert left and right
    assert all((r["bbox"][0] + r["bbox"][2]) / 2 < 160 for r in left)
    assert all((r["bbox"][0] + r["bbox"][2]) / 2 > 160 for r in right)
    assert all(r["n_faces"] == 2 for r in left + right)
    assert left[0]["locator"].startswith("videos/demo_003.mp4#left/")
    rej = rows(tmp_path / "out" / "rejects.parquet")
    summary = [r for r in rej if r["reason"] == "unannotated"]
    assert all(r["detail"].startswith("unannotated_frames: ") for r in summary)


def test_video_frame_n_is_annotation_line_n(tmp_path):
    level_video(tmp_path / "videos" / "clip.avi", 30)
    annotate(tmp_path, "clip", [4] * 30)
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 3})))
    assert not rejects
    assert [s.frame_index for s in samples] == list(range(1, 31, 3))
    for s in samples:
        assert abs(float(s.pixels.mean()) - level_of(s.frame_index)) < 1.5, s.frame_index
        assert s.locator == f"videos/clip.avi#{s.frame_index:05d}" and s.label == "happiness"


def test_left_and_right_share_one_video(tmp_path):
    level_video(tmp_path / "videos" / "duo.mp4", 12, fourcc="mp4v")
    annotate(tmp_path, "duo_left", [0] * 12)
    annotate(tmp_path, "duo_right", [1] * 12, set_dir="Validation_Set")
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 4})))
    assert not rejects
    assert {(s.sequence_id, s.face_side, s.label, s.split) for s in samples} == {
        ("duo_left", "left", "neutral", "train"),
        ("duo_right", "right", "anger", "val"),
    }
    assert len({s.locator for s in samples}) == len(samples) == 6


def test_side_video_with_only_the_other_person_in_view_is_rejected_not_mislabelled(tmp_path):
    """`solo_left` annotates the left person; with only a face on the right half in view, keeping
    it would give the right person the left person's label."""
    from fer_data.sources.affwild2 import write_video

    write_video(tmp_path / "videos" / "solo.mp4", "mp4v", DemoFaces(), 10, [(27, 238, 122, 80)])
    annotate(tmp_path, "solo_left", [4] * 10)
    annotate(tmp_path, "solo_right", [1] * 10)
    m = curate("affwild2", tmp_path, tmp_path / "out", single_process(sources={"affwild2": {"frame_stride": 5}}))
    got = rows(tmp_path / "out" / "curated.parquet")
    assert got and {r["sequence_id"] for r in got} == {"solo_right"} and {r["label"] for r in got} == {"anger"}
    assert all((r["bbox"][0] + r["bbox"][2]) / 2 > 160 for r in got)
    side = [r for r in rows(tmp_path / "out" / "rejects.parquet") if r["reason"] == "no_face_on_side"]
    assert len(side) == m["rejected_by_reason"]["no_face_on_side"] == 2
    assert all(r["locator"].startswith("videos/solo.mp4#left/") and "left half" in r["detail"] for r in side)


# --- annotation layouts and labels ---------------------------------------------------------


def crops(root: Path, video: str, numbers) -> None:
    for n in numbers:
        write_image(root / "cropped_aligned" / video / f"{n:05d}.jpg", np.full((112, 112), 100, np.uint8))


def test_old_expr_set_layout_with_seven_class_header(tmp_path):
    old = Path("annotations") / "EXPR_Set"
    annotate(tmp_path, "v7", [0, 1, 2, 3, 4, 5, 6, -1], header=HEADER7, set_dir="Training_Set", base=old)
    # a header in another order proves that codes are mapped by the names, not by position
    annotate(
        tmp_path,
        "v7b",
        [0, 1],
        header="Surprise,Neutral,Anger,Disgust,Fear,Happiness,Sadness",
        set_dir="Validation_Set",
        base=old,
    )
    crops(tmp_path, "v7", range(1, 9))
    crops(tmp_path, "v7b", range(1, 3))
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 1})))
    v7 = [s for s in samples if s.sequence_id == "v7"]
    assert [s.label for s in v7] == ["neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    assert all(s.split == "train" and s.split_original == "Training_Set" and s.precropped for s in v7)
    v7b = [s for s in samples if s.sequence_id == "v7b"]
    assert [(s.label_native, s.label, s.split) for s in v7b] == [
        ("Surprise", "surprise", "val"),
        ("Neutral", "neutral", "val"),
    ]
    assert [(r.reason, r.detail) for r in rejects] == [("unannotated", "unannotated_frames: 1 of 8 (label -1)")]


def test_newer_layout_wins_over_older_when_both_exist(tmp_path, caplog):
    annotate(tmp_path, "a", [0, 0])
    annotate(tmp_path, "b", [0, 0], base=Path("old") / "EXPR_Set")
    crops(tmp_path, "a", (1, 2))
    src = AffWild2(tmp_path, {"frame_stride": 1})
    assert [Path(k).stem for k in src.keys()]  # noqa: SIM118 - Source.keys() is a method, not a dict's == ["a"]
    assert any("ignoring" in r.getMessage() for r in caplog.records)


def test_unknown_class_name_in_header(tmp_path):
    annotate(tmp_path, "c", [0, 1, 1], header="Neutral,Contempt")
    crops(tmp_path, "c", (1, 2, 3))
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 1})))
    assert [s.frame_index for s in samples] == [1]
    assert [r.reason for r in rejects] == ["unknown_label", "unknown_label"]
    assert "'Contempt'" in rejects[0].detail


# --- malformed annotations -----------------------------------------------------------------


def test_text_and_out_of_range_lines_are_bad_annotations(tmp_path):
    level_video(tmp_path / "videos" / "t.avi", 6)
    rel = tmp_path / NEW / "Train_Set" / "t.txt"
    rel.parent.mkdir(parents=True)
    rel.write_text(f"{HEADER8}\n0\n1\nhappy\n3\n9\n\n")  # frames 1..5 (+ trailing blank line)
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 1})))
    key = rel.relative_to(tmp_path).as_posix()
    bad = {r.locator: r.detail for r in rejects if r.reason == "bad_annotation"}
    assert set(bad) == {f"{key}:4", f"{key}:6"}
    assert "'happy'" in bad[f"{key}:4"] and "frame 3" in bad[f"{key}:4"]
    assert "9" in bad[f"{key}:6"]
    # frame numbers after the bad line still line up: line 5 is frame 4
    assert [(s.frame_index, s.label) for s in samples] == [(1, "neutral"), (2, "anger"), (4, "fear")]
    assert all(abs(float(s.pixels.mean()) - level_of(s.frame_index)) < 1.5 for s in samples)
    assert [r.reason for r in rejects if r.reason != "bad_annotation"] == ["annotation_shorter_than_video"]


def test_many_bad_lines_are_summarised(tmp_path):
    rel = tmp_path / NEW / "Train_Set" / "junk.txt"
    rel.parent.mkdir(parents=True)
    rel.write_text(HEADER8 + "\n" + "n/a\n" * 500)
    crops(tmp_path, "junk", (1,))
    items = list(AffWild2(tmp_path, {"frame_stride": 1}))
    assert len(items) == MAX_LINE_REJECTS + 1 and all(i.reason == "bad_annotation" for i in items)
    assert items[-1].detail.startswith(f"{500 - MAX_LINE_REJECTS} more malformed line(s)")


@pytest.mark.parametrize("text", ["", "\n\n", "0\n1\n2\n", "Neutral,,Anger\n0\n"])
def test_missing_or_numeric_header(tmp_path, text):
    rel = tmp_path / NEW / "Train_Set" / "h.txt"
    rel.parent.mkdir(parents=True)
    rel.write_text(text)
    items = list(AffWild2(tmp_path))
    assert len(items) == 1 and items[0].reason == "bad_header"
    assert items[0].locator == rel.relative_to(tmp_path).as_posix() + ":1"


def test_undecodable_annotation_file(tmp_path):
    rel = tmp_path / NEW / "Train_Set" / "bin.txt"
    rel.parent.mkdir(parents=True)
    rel.write_bytes(b"\xff\xfe\x00\x81garbage")
    items = list(AffWild2(tmp_path))
    assert [i.reason for i in items] == ["bad_annotation"]


# --- length mismatches, broken and missing input -------------------------------------------


def test_annotation_shorter_than_video(tmp_path):
    level_video(tmp_path / "videos" / "s.avi", 40)
    annotate(tmp_path, "s", [2] * 25)
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 5})))
    assert [s.frame_index for s in samples] == [1, 6, 11, 16, 21]
    assert [r.reason for r in rejects] == ["annotation_shorter_than_video"]
    assert "26-40 (15)" in rejects[0].detail


def test_crops_beyond_the_annotation(tmp_path):
    annotate(tmp_path, "cs", [2] * 20)
    crops(tmp_path, "cs", range(1, 31))
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 10})))
    assert [s.frame_index for s in samples] == [1, 11]
    assert [r.reason for r in rejects] == ["annotation_shorter_than_video"]
    assert "10 crop(s) numbered 21-30" in rejects[0].detail


def test_annotation_longer_than_video(tmp_path):
    level_video(tmp_path / "videos" / "l.avi", 20)
    annotate(tmp_path, "l", [5] * 30)
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 2})))
    assert [s.frame_index for s in samples] == list(range(1, 20, 2))
    assert [r.reason for r in rejects] == ["annotation_longer_than_video"]
    assert "5 selected annotated frame(s)" in rejects[0].detail and "20 frames" in rejects[0].detail


def test_annotation_longer_than_video_even_when_no_selected_frame_reaches_the_end(tmp_path):
    level_video(tmp_path / "videos" / "l2.avi", 20)
    annotate(tmp_path, "l2", [5] * 10 + [-1] * 20)
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 1})))
    assert len(samples) == 10
    assert [r.reason for r in rejects] == ["unannotated", "annotation_longer_than_video"]


def test_truncated_video_keeps_frames_before_the_break(tmp_path):
    video = tmp_path / "videos" / "b.avi"
    level_video(video, 40)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    annotate(tmp_path, "b", [6] * 40)
    samples, rejects = split_items(list(AffWild2(tmp_path, {"frame_stride": 1})))
    assert 1 <= len(samples) < 40
    assert [s.frame_index for s in samples] == list(range(1, len(samples) + 1))
    assert all(abs(float(s.pixels.mean()) - level_of(s.frame_index)) < 1.5 for s in samples)
    assert [r.reason for r in rejects] == ["broken_video"]
    assert f"stopped after frame {len(samples)} of 40" in rejects[0].detail


def test_unopenable_video(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "g.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    annotate(tmp_path, "g", [0] * 10)
    items = list(AffWild2(tmp_path, {"frame_stride": 5}))
    assert [i.reason for i in items] == ["broken_video"] and "2 selected frame(s) lost" in items[0].detail


def test_video_frames_larger_than_faces_max_pixels_are_refused_before_decoding(tmp_path):
    from fer_data import params as params_mod
    from fer_data.curate import open_source

    level_video(tmp_path / "videos" / "big.avi", 10, size=(64, 48))
    annotate(tmp_path, "big", [4] * 10)
    params = params_mod.resolve({"faces": {"max_pixels": 64 * 48 - 1}, "sources": {"affwild2": {"frame_stride": 5}}})
    items = list(open_source("affwild2", tmp_path, params))
    assert [i.reason for i in items] == ["image_too_large"] and "faces.max_pixels 3071" in items[0].detail
    params = params_mod.resolve({"faces": {"max_pixels": 64 * 48}, "sources": {"affwild2": {"frame_stride": 5}}})
    assert all(isinstance(i, Sample) for i in open_source("affwild2", tmp_path, params))


def test_missing_video_and_missing_frames(tmp_path):
    annotate(tmp_path, "nowhere", [0] * 10)
    annotate(tmp_path, "holes", [1] * 6)
    crops(tmp_path, "holes", (1, 2, 5, 6))
    items = list(AffWild2(tmp_path, {"frame_stride": 1}))
    samples, rejects = split_items(items)
    assert [s.frame_index for s in samples] == [1, 2, 5, 6]
    reasons = Counter(r.reason for r in rejects)
    assert reasons == {"missing_frame": 2, "missing_video": 1}
    missing = next(r for r in rejects if r.reason == "missing_video")
    assert "nowhere" in missing.detail and "10 selected annotated frame(s) lost" in missing.detail
    assert {r.locator for r in rejects if r.reason == "missing_frame"} == {
        "cropped_aligned/holes/00003.jpg",
        "cropped_aligned/holes/00004.jpg",
    }


def test_frames_mode_chooses_crops_or_video(tmp_path):
    level_video(tmp_path / "videos" / "m.avi", 6)
    crops(tmp_path, "m", range(1, 7))
    annotate(tmp_path, "m", [0] * 6)
    auto = [i for i in AffWild2(tmp_path, {"frame_stride": 3})]
    video = [i for i in AffWild2(tmp_path, {"frame_stride": 3, "frames": "video"})]
    assert all(s.precropped and s.path for s in auto)
    assert all(not s.precropped and s.pixels is not None for s in video)
    (tmp_path / "videos" / "m.avi").rename(tmp_path / "videos" / "elsewhere.avi")
    crops_only = list(AffWild2(tmp_path, {"frames": "video"}))
    assert [i.reason for i in crops_only] == ["missing_video"]


def test_other_frames_are_not_decoded(tmp_path):
    level_video(tmp_path / "videos" / "o.avi", 4)
    annotate(tmp_path, "o", [7, 4, 7, 4])
    samples, _ = split_items(list(AffWild2(tmp_path, {"frame_stride": 1})))
    assert [(s.label, s.pixels is None) for s in samples] == [
        ("not_an_emotion", True),
        ("happiness", False),
        ("not_an_emotion", True),
        ("happiness", False),
    ]
    assert abs(float(samples[3].pixels.mean()) - level_of(4)) < 1.5  # skipping retrieve() keeps positions


# --- selection, sharding, configuration ----------------------------------------------------


def test_select_frames_stride_skips_unannotated_and_cap_spreads_evenly():
    codes = [0] * 10 + [-1] * 10 + [1] * 80 + [None, 2]
    assert select_frames(codes, 10, 0) == [1, 21, 31, 41, 51, 61, 71, 81, 91]
    assert select_frames(codes, 1, 3) == [1, 56, 102]  # 91 annotated: picks 0, 45, 90
    assert select_frames(codes, 1, 0)[-2:] == [100, 102]  # the malformed line 101 is never a frame
    assert select_frames([-1, -1], 1, 5) == []


def test_long_videos_are_sharded_by_frame_range_without_changing_the_items(tmp_path):
    level_video(tmp_path / "videos" / "long.avi", 60)
    level_video(tmp_path / "videos" / "short.avi", 5)
    annotate(tmp_path, "long", [0] * 20 + [-1] * 5 + [3] * 40)  # 65 lines, video of 60 frames
    annotate(tmp_path, "short", [1] * 5, set_dir="Validation_Set")
    src = AffWild2(tmp_path, {"frame_stride": 2})
    shards = src.shards(max_items=8, min_shards=1)
    keys = [k for s in shards for k in s["keys"]]
    assert any("#" in k for k in keys) and len(shards) > 3
    assert all(sum(1 for _ in src.iter_shard(s)) <= 8 + 3 for s in shards)
    sharded = [i for s in shards for i in AffWild2(tmp_path, {"frame_stride": 2}).iter_shard(s)]
    whole = list(src)

    def key(i: Sample | Reject) -> tuple[str, str | None]:
        return i.locator, getattr(i, "reason", None)

    samples_sharded = [key(i) for i in sharded if isinstance(i, Sample)]
    assert samples_sharded == [key(i) for i in whole if isinstance(i, Sample)]
    assert len(samples_sharded) == 27 + 3  # long: 30 selected, 3 beyond the 60-frame video
    assert Counter(i.reason for i in sharded if isinstance(i, Reject))["annotation_longer_than_video"] == 1
    unannotated = sum(int(i.detail.split()[1]) for i in sharded if isinstance(i, Reject) and i.reason == "unannotated")
    assert unannotated == 5


def test_configuration_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="EXPR"):
        list(AffWild2(tmp_path).keys())
    with pytest.raises(ValueError, match="frames"):
        AffWild2(tmp_path, {"frames": "both"})
    with pytest.raises(ValueError, match="frame_stride"):
        AffWild2(tmp_path, {"frame_stride": 0})
