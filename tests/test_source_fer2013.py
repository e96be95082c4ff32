"""FER2013 source: CSV parsing (malformed rows, line numbers, variants), sharding, folders, demo, real data."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from support import realdata, rows, single_process

from fer_data import params as params_mod
from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import fer2013_csv, get
from fer_data.sources.base import Reject, Sample
from fer_data.sources.fer2013_csv import PIXELS, parse_pixel_batch, record_starts


def pixels(seed: int, count: int = PIXELS) -> str:
    """A pixel field of `count` values (a gradient shifted by seed, so rows differ)."""
    return " ".join(str((seed * 7 + k) % 256) for k in range(count))


def image(seed: int) -> np.ndarray:
    return np.array([(seed * 7 + k) % 256 for k in range(PIXELS)], dtype=np.uint8).reshape(48, 48)


def write(path: Path, lines: list[str], newline: str = "\n", final_newline: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes(text.encode())
    return path


def by_locator(items) -> dict[str, Sample | Reject]:
    return {i.locator: i for i in items}


def reasons(items) -> dict[str, str]:
    return {i.locator: i.reason for i in items if isinstance(i, Reject)}


def same_items(a, b) -> bool:
    """Equal item lists (Samples compared field by field, pixels by value)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if type(x) is not type(y):
            return False
        if isinstance(x, Reject):
            if x != y:
                return False
            continue
        if (x.locator, x.label, x.label_native, x.split, x.split_original, x.raw_sha256) != (
            y.locator,
            y.label,
            y.label_native,
            y.split,
            y.split_original,
            y.raw_sha256,
        ):
            return False
        if not np.array_equal(x.pixels, y.pixels):
            return False
    return True


# --- parser: malformed rows ---------------------------------------------------------------


def malformed_csv(root: Path) -> Path:
    """Every kind of broken row, each between valid ones; numbers in comments are lines."""
    return write(
        root / "fer2013.csv",
        [
            "emotion,pixels,Usage",  # 1
            f"0,{pixels(1)},Training",  # 2 valid
            "3,1 2 3",  # 3 truncated row (2 fields)
            f"1,{pixels(2)},Training",  # 4 valid
            f"2,{pixels(3, PIXELS - 1)},Training",  # 5 2303 pixels
            f"2,{pixels(4).replace('28 ', '12a ', 1)},Training",  # 6 non-numeric token
            f"2,{pixels(5).replace(' 42 ', ' 256 ', 1)},PublicTest",  # 7 out of range
            f"9,{pixels(6)},Training",  # 8 label 9
            f"x,{pixels(7)},Training",  # 9 label "x"
            "",  # 10 blank line
            f"6,{pixels(8)},PrivateTest",  # 11 valid
            f",{pixels(9)},Training",  # 12 empty label
            f"4,{pixels(10)},Trainig",  # 13 unknown Usage
            f'5,"{pixels(11)}",PublicTest',  # 14 valid, quoted pixel field
            f"2,{pixels(12)},Training,extra",  # 15 too many fields
            "4,1 2 3 4",  # 16 last line, cut short, no newline
        ],
        final_newline=False,
    )


def test_every_malformed_row_is_rejected_with_its_reason_and_line(tmp_path):
    malformed_csv(tmp_path)
    items = list(get("fer2013")(tmp_path))
    assert reasons(items) == {
        "fer2013.csv:3": "truncated_row",
        "fer2013.csv:5": "wrong_pixel_count",
        "fer2013.csv:6": "non_numeric_pixel",
        "fer2013.csv:7": "pixel_out_of_range",
        "fer2013.csv:8": "unknown_label",
        "fer2013.csv:9": "unknown_label",
        "fer2013.csv:12": "unknown_label",
        "fer2013.csv:13": "unknown_split",
        "fer2013.csv:15": "truncated_row",
        "fer2013.csv:16": "truncated_row",
    }
    got = by_locator(items)
    assert "2303 pixel values" in got["fer2013.csv:5"].detail
    assert "'12a'" in got["fer2013.csv:6"].detail
    assert "256" in got["fer2013.csv:7"].detail
    assert "cut short" in got["fer2013.csv:16"].detail  # the file ends inside that line
    samples = [i for i in items if isinstance(i, Sample)]
    assert [s.locator for s in samples] == ["fer2013.csv:2", "fer2013.csv:4", "fer2013.csv:11", "fer2013.csv:14"]
    assert [(s.label, s.split, s.split_original) for s in samples] == [
        ("anger", "train", "Training"),
        ("disgust", "train", "Training"),
        ("neutral", "test", "PrivateTest"),
        ("surprise", "val", "PublicTest"),
    ]
    for s, seed in zip(samples, (1, 2, 8, 11)):
        assert s.pixels.dtype == np.uint8 and np.array_equal(s.pixels, image(seed))
        assert s.raw_sha256 == hashlib.sha256(pixels(seed).encode()).hexdigest()
        assert s.precropped and s.subject_id is None


def test_crlf_file_with_final_line_without_newline(tmp_path):
    write(
        tmp_path / "fer2013.csv",
        [
            "emotion,pixels,Usage",
            f"3,{pixels(1)},Training",
            "",
            f"5,{pixels(2)},PublicTest",
            f"6,{pixels(3)},PrivateTest",
        ],
        newline="\r\n",
        final_newline=False,
    )
    items = list(get("fer2013")(tmp_path))
    assert [(i.locator, i.label, i.split) for i in items] == [
        ("fer2013.csv:2", "happiness", "train"),
        ("fer2013.csv:4", "surprise", "val"),
        ("fer2013.csv:5", "neutral", "test"),
    ]
    assert np.array_equal(items[2].pixels, image(3))  # no stray \r in the last value
    assert items[0].raw_sha256 == hashlib.sha256(pixels(1).encode()).hexdigest()


def test_icml_header_with_leading_spaces_is_read_by_column_name(tmp_path):
    write(
        tmp_path / "icml_face_data.csv",
        ["emotion, Usage, pixels", f"4,Training,{pixels(1)}", f"1,PrivateTest,{pixels(2)}", f"7,Training,{pixels(3)}"],
    )
    items = list(get("fer2013")(tmp_path))
    assert [(i.locator, getattr(i, "label", None), getattr(i, "split_original", None)) for i in items[:2]] == [
        ("icml_face_data.csv:2", "sadness", "Training"),
        ("icml_face_data.csv:3", "disgust", "PrivateTest"),
    ]
    assert np.array_equal(items[1].pixels, image(2))
    assert reasons(items) == {"icml_face_data.csv:4": "unknown_label"}


def test_kaggle_train_and_test_csv(tmp_path):
    write(tmp_path / "train.csv", ["emotion,pixels", f"0,{pixels(1)}", f"3,{pixels(2)}"])
    write(tmp_path / "test.csv", ["pixels", pixels(3), pixels(4, 100)])
    items = list(get("fer2013")(tmp_path))
    assert [(i.locator, getattr(i, "label", None), getattr(i, "split", None)) for i in items] == [
        ("train.csv:2", "anger", "train"),
        ("train.csv:3", "happiness", "train"),
        ("test.csv:2", None, "test"),
        ("test.csv:3", None, None),
    ]
    assert items[2].label_native is None and np.array_equal(items[2].pixels, image(3))
    assert items[3].reason == "wrong_pixel_count"


def test_file_preference_reads_one_copy_of_the_faces(tmp_path):
    write(tmp_path / "train.csv", ["emotion,pixels", f"0,{pixels(1)}"])
    write(tmp_path / "test.csv", ["pixels", pixels(2)])
    write(tmp_path / "icml_face_data.csv", ["emotion, Usage, pixels", f"4,Training,{pixels(3)}"])
    assert [i.locator for i in get("fer2013")(tmp_path)] == ["icml_face_data.csv:2"]
    write(tmp_path / "fer2013.csv", ["emotion,pixels,Usage", f"5,{pixels(4)},Training"])
    assert [i.locator for i in get("fer2013")(tmp_path)] == ["fer2013.csv:2"]
    explicit = get("fer2013")(tmp_path, {"csv_files": ["train.csv", "test.csv"]})
    assert [i.locator for i in explicit] == ["train.csv:2", "test.csv:2"]


def test_file_without_pixels_column_is_one_reject(tmp_path):
    write(tmp_path / "train.csv", ["emotion,image", "0,abc", "1,def"])
    write(tmp_path / "test.csv", ["pixels", pixels(1)])
    src = get("fer2013")(tmp_path)
    items = list(src)
    assert reasons(items) == {"train.csv:1": "unrecognised_header"}
    assert [i.locator for i in items if isinstance(i, Sample)] == ["test.csv:2"]
    assert same_items([x for s in src.shards(1, 4) for x in src.iter_shard(s)], items)


def test_no_csv_and_no_folders_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="neither a FER2013 CSV"):
        get("fer2013")(tmp_path)
    with pytest.raises(FileNotFoundError, match="no FER2013 CSV"):
        get("fer2013")(tmp_path, {"layout": "csv"})
    with pytest.raises(ValueError, match="layout"):
        get("fer2013")(tmp_path, {"layout": "zip"})


def test_batch_path_agrees_with_the_exact_per_field_path():
    fields = [
        pixels(1),
        pixels(2, PIXELS - 1),
        pixels(3, PIXELS + 1),
        pixels(4).replace(" ", "  \t", 5),
        pixels(5).replace(" 35 ", " 999999 ", 1),
        pixels(6).replace(" 42 ", " -1 ", 1),
        " " + pixels(7) + " ",
        "",
        pixels(8).replace(" 56 ", " 99999999999999999999 ", 1),
        pixels(9).replace(" 63 ", " 5.5 ", 1),
    ]
    got = parse_pixel_batch([f.encode() for f in fields])
    kinds = [g[0] if isinstance(g, tuple) else "ok" for g in got]
    assert kinds == [
        "ok",
        "wrong_pixel_count",
        "wrong_pixel_count",
        "ok",
        "pixel_out_of_range",
        "pixel_out_of_range",
        "ok",
        "wrong_pixel_count",
        "pixel_out_of_range",
        "non_numeric_pixel",
    ]
    assert np.array_equal(got[3], image(4)) and np.array_equal(got[6], image(7))
    # Misaligned neighbours (one value short, the next one long) never pass as two images.
    pair = parse_pixel_batch([pixels(1, PIXELS - 1).encode(), (pixels(2) + " 7").encode()])
    assert [g[0] for g in pair] == ["wrong_pixel_count", "wrong_pixel_count"]


def test_only_broken_fields_take_the_per_field_path(monkeypatch):
    """One short row, or one non-numeric token, must not send the whole batch down the slow path."""
    from fer_data.sources import fer2013_csv

    calls = []
    real = fer2013_csv.parse_pixel_field
    monkeypatch.setattr(fer2013_csv, "parse_pixel_field", lambda text: calls.append(text) or real(text))
    fields = [pixels(i).encode() for i in range(1, 41)]
    fields[7] = pixels(8, PIXELS - 1).encode()
    fields[30] = pixels(31).replace(" 63 ", " x ", 1).encode()
    got = parse_pixel_batch(fields)
    # the short field, and the 5-field piece (40 -> 20 -> 10 -> 5) that holds the non-numeric token
    assert len(calls) == 1 + 5
    assert got[7][0] == "wrong_pixel_count" and got[30][0] == "non_numeric_pixel"
    assert all(np.array_equal(got[i], image(i + 1)) for i in range(40) if i not in (7, 30))


def test_small_batches_give_the_same_rows(tmp_path, monkeypatch):
    malformed_csv(tmp_path)
    whole = list(get("fer2013")(tmp_path))
    monkeypatch.setattr(fer2013_csv, "BATCH_ROWS", 2)
    assert same_items(list(get("fer2013")(tmp_path)), whole)


# --- sharding ----------------------------------------------------------------------------


def test_sharded_iteration_equals_plain_iteration(tmp_path):
    lines = ["emotion,pixels,Usage"]
    for i in range(40):
        usage = ("Training", "PublicTest", "PrivateTest")[i % 3]
        lines.append(f"{i % 7},{pixels(i)},{usage}" if i % 9 else f"{i % 7},{pixels(i, 5)},{usage}")
        if i % 11 == 0:
            lines.append("   ")  # blank lines between records
    write(tmp_path / "fer2013.csv", lines, newline="\r\n", final_newline=False)
    src = get("fer2013")(tmp_path)
    plain = list(src)
    assert len(plain) == 40 and sum(isinstance(i, Reject) for i in plain) == 5
    for max_items, min_shards in ((7, 1), (1, 1), (100, 3), (100, 1)):
        shards = src.shards(max_items, min_shards)
        assert len(shards) == -(-40 // min(max_items, -(-40 // min_shards)))
        assert all(set(s) == {"file", "start", "end", "first_line"} for s in shards)
        reopened = get("fer2013")(tmp_path)  # workers re-open the dataset
        assert same_items([x for s in shards for x in reopened.iter_shard(s)], plain)


def test_sharding_spans_several_files(tmp_path):
    write(tmp_path / "train.csv", ["emotion,pixels"] + [f"{i % 7},{pixels(i)}" for i in range(9)])
    write(tmp_path / "test.csv", ["pixels"] + [pixels(i) for i in range(5)])
    src = get("fer2013")(tmp_path)
    shards = src.shards(4, 1)
    assert [s["file"] for s in shards] == ["train.csv"] * 3 + ["test.csv"] * 2
    assert same_items([x for s in shards for x in src.iter_shard(s)], list(src))


def test_planning_pass_agrees_with_the_line_reader(tmp_path, monkeypatch):
    data = b"h\n" + b"a\n\n  \r\n b\n\tc\r\nd" + b"\n" * 3 + b"  e  \n   "
    (tmp_path / "x.csv").write_bytes(data)
    expected = [line.number for line in fer2013_csv.iter_lines(tmp_path / "x.csv", 2, 2)]
    assert expected == [2, 5, 6, 7, 10]
    for block in (1, 2, 3, 7, 1 << 22):
        monkeypatch.setattr(fer2013_csv, "PLAN_BLOCK", block)
        index = record_starts(tmp_path / "x.csv", 2, 2)
        assert index.lines.tolist() == expected
        for off, number in zip(index.offsets.tolist(), expected):
            assert next(fer2013_csv.iter_lines(tmp_path / "x.csv", off, number)).number == number


# --- folders -----------------------------------------------------------------------------


def test_folder_variant_keeps_the_origin_from_file_names(tmp_path):
    get("fer2013").write_demo(tmp_path, DemoFaces())
    (tmp_path / "images" / "train" / "contempt").mkdir()
    (tmp_path / "images" / "train" / "contempt" / "Training_1.jpg").write_bytes(
        (tmp_path / "images" / "train" / "angry" / "Training_1000.jpg").read_bytes()
    )
    src = get("fer2013")(tmp_path, {"layout": "folders"})
    assert src.layout == "folders"
    items = list(src)
    assert reasons(items) == {"train/contempt/Training_1.jpg": "unknown_label"}  # not a FER2013 class
    samples = [i for i in items if isinstance(i, Sample)]
    assert len(samples) == 28 and all(s.precropped for s in samples)
    assert Counter((s.split, s.split_original) for s in samples) == {
        ("train", "Training"): 14,
        ("test", "PublicTest"): 7,
        ("test", "PrivateTest"): 7,
    }
    assert Counter(s.label for s in samples) == {
        label: 4 for label in ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    }
    mapped = list(get("fer2013")(tmp_path, {"layout": "folders", "class_map": {"contempt": "contempt"}}))
    assert not reasons(mapped)


# --- demo and curation -------------------------------------------------------------------


def test_demo_tree_curates_with_labels_and_splits(tmp_path):
    root = tmp_path / "fer2013"
    get("fer2013").write_demo(root, DemoFaces())
    assert get("fer2013")(root).layout == "csv"
    metrics = curate("fer2013", root, tmp_path / "out", params_mod.resolve({"run": {"workers": 1}}))
    assert metrics["read"] == 128 and metrics["curated"] == 126
    assert metrics["rejected_by_reason"] == {"unknown_label": 1, "wrong_pixel_count": 1}
    got = rows(tmp_path / "out" / "curated.parquet")
    n = 126
    for r in got:
        i = int(r["locator"].split(":")[1]) - 2  # data row i has label i % 7
        assert r["label_native"] == str(i % 7)
        assert r["label"] == ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")[i % 7]
        assert r["split"] == ("train" if i < 0.8 * n else "val" if i < 0.9 * n else "test")
        assert r["detector"] == "precropped" and r["width"] == r["height"] == 48
    assert Counter(r["split"] for r in got) == {"train": 101, "val": 13, "test": 12}
    rej = {r["locator"]: r["reason"] for r in rows(tmp_path / "out" / "rejects.parquet")}
    assert rej == {"fer2013.csv:128": "wrong_pixel_count", "fer2013.csv:129": "unknown_label"}


def test_demo_folder_variant_curates(tmp_path):
    root = tmp_path / "fer2013"
    get("fer2013").write_demo(root, DemoFaces())
    metrics = curate("fer2013", root, tmp_path / "out", single_process(sources={"fer2013": {"layout": "folders"}}))
    assert metrics["read"] == 28 and metrics["curated"] == 28
    got = rows(tmp_path / "out" / "curated.parquet")
    assert Counter((r["split"], r["label"]) for r in got) == {
        (split, label): n
        for split, n in (("train", 2), ("test", 2))
        for label in ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    }


# --- real data ---------------------------------------------------------------------------

SLICE_COUNTS = {"happiness": 8, "anger": 6, "fear": 5, "neutral": 5, "sadness": 4, "surprise": 3}


def test_real_csv_slice(tmp_path):
    root = realdata("fer2013", "csv_slice")
    src = get("fer2013")(root)
    items = list(src)
    assert all(isinstance(i, Sample) for i in items) and len(items) == 31
    assert [i.locator for i in items] == [f"fer2013.csv:{n}" for n in range(2, 33)]
    assert Counter(i.label for i in items) == SLICE_COUNTS
    first = (root / "fer2013.csv").read_bytes().split(b"\n")[1]
    assert items[0].label_native == "0" and items[0].raw_sha256 == hashlib.sha256(first.split(b",")[1]).hexdigest()
    assert items[0].pixels[0, :4].tolist() == [70, 80, 82, 72]
    assert same_items([x for s in src.shards(8, 2) for x in src.iter_shard(s)], items)
    metrics = curate("fer2013", root, tmp_path / "out", single_process())
    assert metrics["curated"] == 31 and metrics["rejected"] == 0
    got = rows(tmp_path / "out" / "curated.parquet")
    assert Counter(r["label"] for r in got) == SLICE_COUNTS
    assert {(r["split"], r["split_original"]) for r in got} == {("train", "Training")}


def test_real_image_folders(tmp_path):
    root = realdata("fer2013", "images")
    src = get("fer2013")(root)
    assert src.layout == "folders"
    items = list(src)
    assert all(isinstance(i, Sample) for i in items)
    classes = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    assert Counter((i.split, i.label) for i in items) == {
        **{("train", c): 40 for c in classes},
        **{("test", c): 15 for c in classes},
    }
    assert Counter(i.split_original for i in items) == {"Training": 280, "PrivateTest": 105}
    # The parent folder works too: the images are found in its images/ subfolder.
    assert len(list(get("fer2013")(root.parent))) == 385
    metrics = curate("fer2013", root, tmp_path / "out", single_process())
    # one of the real crops is a blank frame (grey-level deviation 0): not a face (issue #9)
    assert metrics["read"] == 385 and metrics["curated"] == 384
    assert metrics["rejected_by_reason"] == {"no_face_in_crop": 1}
    got = rows(tmp_path / "out" / "curated.parquet")
    (blank,) = rows(tmp_path / "out" / "rejects.parquet")
    kept = [i for i in items if i.locator != blank["locator"]]
    assert Counter((r["split"], r["label"]) for r in got) == Counter((i.split, i.label) for i in kept)
