"""RAF-DB basic: the real label list, both image sets, and broken label lines / images."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from support import realdata, rows, single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import get
from fer_data.sources.base import Reject, Sample
from fer_data.sources.rafdb import LabelLine

LABEL_FILE = "EmoLabel/list_patition_label.txt"


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "rafdb"
    get("rafdb").write_demo(root, DemoFaces())
    return root


@pytest.fixture
def tree(demo_tree, tmp_path) -> Path:
    return Path(shutil.copytree(demo_tree, tmp_path / "rafdb"))


def test_real_label_list_counts_and_missing_images_are_rejects(tmp_path):
    root = realdata("rafdb", "basic")
    src = get("rafdb")(root)
    entries = list(src.lines())
    assert len(entries) == 15339 and all(isinstance(e, LabelLine) for e in entries)
    per_split = Counter(e.split_original for e in entries)
    assert per_split == {"train": 12271, "test": 3068}
    train = Counter(e.code for e in entries if e.split_original == "train")
    assert train == {1: 1290, 2: 281, 3: 717, 4: 4772, 5: 1982, 6: 705, 7: 2524}
    test = Counter(e.code for e in entries if e.split_original == "test")
    assert test == {1: 329, 2: 74, 3: 160, 4: 1185, 5: 478, 6: 162, 7: 680}
    assert (entries[0].name, entries[0].code, entries[-1].name) == ("train_00001.jpg", 5, "test_3068.jpg")

    # No images ship with the sample: every line is a missing_image reject, none a crash.
    metrics = curate("rafdb", root, tmp_path / "out", single_process(run={"shard_size": 4096}))
    assert metrics["read"] == 15339 and metrics["rejected_by_reason"] == {"missing_image": 15339}
    first = rows(tmp_path / "out" / "rejects.parquet")[0]
    assert first["locator"] == "Image/aligned/train_00001_aligned.jpg"
    assert first["detail"] == f"named by {LABEL_FILE}:1 but not found"


def test_aligned_crops_are_used_whole(demo_tree, tmp_path):
    items = list(get("rafdb")(demo_tree))
    assert len(items) == 16 and all(isinstance(i, Sample) and i.precropped for i in items)
    assert Counter(i.split for i in items) == {"train": 10, "test": 6}
    first = items[0]
    assert (first.locator, first.label_native, first.label, first.split_original) == (
        "Image/aligned/train_00001_aligned.jpg",
        "1",
        "surprise",
        "train",
    )
    metrics = curate("rafdb", demo_tree, tmp_path / "out", single_process())
    assert metrics["curated"] == 16 and metrics["unaligned"] == 0
    got = rows(tmp_path / "out" / "curated.parquet")
    assert {r["detector"] for r in got} == {"precropped"} and {r["orig_width"] for r in got} == {100}
    assert Counter(r["label"] for r in got)["neutral"] == 2  # code 7


def test_original_photos_go_through_detection(demo_tree, tmp_path):
    src = get("rafdb")(demo_tree, {"image_set": "original"})
    first = next(iter(src))
    assert first.locator == "Image/original/train_00001.jpg" and not first.precropped
    metrics = curate("rafdb", demo_tree, tmp_path / "out", single_process(sources={"rafdb": {"image_set": "original"}}))
    assert metrics["read"] == 16 and metrics["curated"] >= 13
    assert {r["detector"] for r in rows(tmp_path / "out" / "curated.parquet")} == {"hog"}
    with pytest.raises(ValueError, match="image_set"):
        get("rafdb")(demo_tree, {"image_set": "cropped"})


def test_bad_lines_unknown_codes_missing_and_unreadable_images(tree, tmp_path):
    labels = tree / LABEL_FILE
    with labels.open("a") as fh:
        fh.write("train_00011.jpg happy\n")  # line 17: text for a code
        fh.write("train_00012.jpg 5 extra\n")  # line 18: three fields
        fh.write("\n")  # line 19: blank, skipped
        fh.write("train_00013.jpg 9\n")  # line 20: unknown code
        fh.write("train_00014.jpg 3\n")  # line 21: no such image
        fh.write("train_00015.jpg 4")  # line 22: unreadable image, no final newline
    (tree / "Image/aligned/train_00015_aligned.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    metrics = curate("rafdb", tree, tmp_path / "out", single_process(run={"shard_size": 5}))
    rej = {r["locator"]: r for r in rows(tmp_path / "out" / "rejects.parquet")}
    assert rej[f"{LABEL_FILE}:17"]["reason"] == "bad_label_line" and "'happy'" in rej[f"{LABEL_FILE}:17"]["detail"]
    assert rej[f"{LABEL_FILE}:18"]["reason"] == "bad_label_line" and "3 fields" in rej[f"{LABEL_FILE}:18"]["detail"]
    assert rej["Image/aligned/train_00013_aligned.jpg"]["reason"] == "unknown_label"
    assert rej["Image/aligned/train_00014_aligned.jpg"]["reason"] == "missing_image"
    assert f"{LABEL_FILE}:21" in rej["Image/aligned/train_00014_aligned.jpg"]["detail"]
    assert rej["Image/aligned/train_00015_aligned.jpg"]["reason"] == "unreadable_image"
    assert metrics["read"] == 16 + 5 and metrics["curated"] == 16  # the valid lines survive


def test_missing_label_file_is_one_reject(tree, tmp_path):
    (tree / LABEL_FILE).unlink()
    items = list(get("rafdb")(tree))
    assert len(items) == 1 and isinstance(items[0], Reject) and items[0].reason == "missing_label_file"
    metrics = curate("rafdb", tree, tmp_path / "out", single_process())
    assert metrics["rejected_by_reason"] == {"missing_label_file": 1}
