"""AffectNet: given face boxes, valence/arousal, streamed CSV shards, and malformed rows."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from support import rows, single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import get
from fer_data.sources.base import Reject, Sample

LISTS = "Manually_Annotated_file_lists"
ALL8 = {"labels": {"target_set": "all8"}}


@pytest.fixture(scope="module")
def demo_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "affectnet"
    get("affectnet").write_demo(root, DemoFaces())
    return root


@pytest.fixture
def tree(demo_tree, tmp_path) -> Path:
    return Path(shutil.copytree(demo_tree, tmp_path / "affectnet"))


def _first_row(tree: Path) -> list[str]:
    return (tree / LISTS / "training.csv").read_text().splitlines()[1].split(",")


def test_demo_tree_uses_given_boxes_and_keeps_valence_arousal(demo_tree, tmp_path):
    items = list(get("affectnet")(demo_tree))
    assert len(items) == 20
    first = items[0]
    assert isinstance(first, Sample) and first.locator == f"{LISTS}/training.csv:2"
    x, y, w, h = map(int, _first_row(demo_tree)[1:5])
    assert first.face_box == (x, y, x + w - 1, y + h - 1) and first.provided_landmarks.shape == (68, 2)
    assert -1 <= first.extra["valence"] <= 1 and -1 <= first.extra["arousal"] <= 1
    metrics = curate("affectnet", demo_tree, tmp_path / "out", single_process(**ALL8))
    assert metrics["curated"] == 17 and metrics["rejected_by_reason"] == {"not_an_emotion": 3}
    got = rows(tmp_path / "out" / "curated.parquet")
    assert Counter(r["split"] for r in got) == {"train": 11, "val": 6}
    assert Counter(r["split_original"] for r in got) == {"training": 11, "validation": 6}
    assert {r["detector"] for r in got} == {"given"}
    assert all(r["valence"] is not None and r["provided_landmarks_nme"] < 0.1 for r in got)
    assert got[0]["bbox"] == list(first.face_box) and got[0]["label_native"] == "0" and got[0]["label"] == "neutral"
    np.testing.assert_allclose(np.reshape(got[0]["landmarks_provided"], (68, 2)), first.provided_landmarks, atol=1e-4)
    details = {r["locator"]: r["detail"] for r in rows(tmp_path / "out" / "rejects.parquet")}
    assert "no-face" in details[f"{LISTS}/training.csv:12"] and "uncertain" in details[f"{LISTS}/training.csv:11"]


def test_shards_are_byte_ranges_that_cover_every_row_once(demo_tree):
    src = get("affectnet")(demo_tree)
    shards = src.shards(max_items=4, min_shards=1)
    assert [s["count"] for s in shards] == [4, 4, 4, 2, 4, 2]
    assert [s["line"] for s in shards[:4]] == [2, 6, 10, 14]
    assert [i.locator for s in shards for i in src.iter_shard(s)] == [i.locator for i in src]


def test_malformed_rows_become_rejects_and_valid_rows_survive(tree, tmp_path):
    good = _first_row(tree)

    def row(**changes) -> str:
        cols = [
            "subDirectory_filePath",
            "face_x",
            "face_y",
            "face_width",
            "face_height",
            "facial_landmarks",
            "expression",
            "valence",
            "arousal",
        ]
        fields = dict(zip(cols, good)) | {k: str(v) for k, v in changes.items()}
        return ",".join(fields[c] for c in cols)

    broken = tree / "Manually_Annotated_Images/9/broken.jpg"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for copy in ("23", "24"):  # kept rows need images of their own: one image named twice is a duplicate entry
        (broken.parent / f"copy{copy}.jpg").write_bytes((tree / "Manually_Annotated_Images" / good[0]).read_bytes())
    extra = [
        ",".join(good[:5]),  # 16: truncated row
        row(face_x="abc"),  # 17
        row(expression="happy"),  # 18
        row(expression=12),  # 19
        row(valence=3.5),  # 20
        row(face_width=0),  # 21
        row(subDirectory_filePath="9/nowhere.jpg"),  # 22
        row(subDirectory_filePath="9/copy23.jpg", facial_landmarks="1;2;3", expression=1),  # 23: kept, no landmarks
        row(subDirectory_filePath="9/copy24.jpg", valence=-2, arousal=-2, expression=3),  # 24: kept, no valence/arousal
        row(subDirectory_filePath="9/broken.jpg"),  # 25
        row(subDirectory_filePath=""),  # 26
        '"unterminated,1,2,3',  # 27
    ]
    with (tree / LISTS / "training.csv").open("a") as fh:
        fh.write("\n".join(extra) + "\n")
    metrics = curate("affectnet", tree, tmp_path / "out", single_process(run={"shard_size": 5}, **ALL8))
    rej = {
        int(r["locator"].rsplit(":", 1)[1]): r
        for r in rows(tmp_path / "out" / "rejects.parquet")
        if "training.csv" in r["locator"]
    }
    expected = {
        16: "malformed_row",
        17: "bad_number",
        18: "bad_number",
        19: "unknown_label",
        20: "bad_number",
        21: "bad_face_box",
        22: "missing_image",
        25: "unreadable_image",
        26: "malformed_row",
        27: "malformed_row",
    }
    assert {line: rej[line]["reason"] for line in expected} == expected
    assert "face_x 'abc'" in rej[17]["detail"] and "9/nowhere.jpg" in rej[22]["detail"]
    got = {r["locator"]: r for r in rows(tmp_path / "out" / "curated.parquet")}
    assert got[f"{LISTS}/training.csv:23"]["provided_landmarks_nme"] is None
    kept = got[f"{LISTS}/training.csv:24"]
    assert kept["valence"] is None and kept["arousal"] is None and kept["label"] == "surprise"
    assert metrics["curated"] == 17 + 2 and metrics["read"] == 20 + len(extra)


def test_missing_list_bad_header_and_lists_at_the_root(tree, tmp_path):
    (tree / LISTS / "validation.csv").unlink()
    items = list(get("affectnet")(tree))
    assert isinstance(items[-1], Reject) and items[-1].reason == "missing_label_file" and len(items) == 15
    (tree / LISTS / "training.csv").write_text("path,x,y\n1/a.jpg,1,2\n")
    items = list(get("affectnet")(tree))
    assert [(i.locator, i.reason) for i in items] == [
        (f"{LISTS}/training.csv:1", "bad_header"),
        ("validation.csv", "missing_label_file"),
    ]
    metrics = curate("affectnet", tree, tmp_path / "out", single_process())
    assert metrics["rejected_by_reason"] == {"bad_header": 1, "missing_label_file": 1}

    fresh = tmp_path / "flat"
    get("affectnet").write_demo(fresh, DemoFaces())
    for name in ("training.csv", "validation.csv"):
        (fresh / LISTS / name).rename(fresh / name)
    items = list(get("affectnet")(fresh))
    assert len(items) == 20 and items[0].locator == "training.csv:2"
