"""The engine's guarantees: deterministic rows, atomic outputs, label filtering, parallel = serial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from support import rows, single_process

from fer_data import schema
from fer_data.curate import curate, label_reject, run_shard
from fer_data.demo import DemoFaces
from fer_data.faces.process import process
from fer_data.sources import get
from fer_data.sources.base import Reject, Sample


@pytest.fixture(scope="module")
def jaffe_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "jaffe"
    get("jaffe").write_demo(root, DemoFaces())
    return root


def _table(out: Path):
    return pq.read_table(out / "curated.parquet")


def test_same_input_and_params_give_identical_rows(jaffe_tree, tmp_path):
    curate("jaffe", jaffe_tree, tmp_path / "a", single_process())
    curate("jaffe", jaffe_tree, tmp_path / "b", single_process(run={"shard_size": 5}))
    a, b = _table(tmp_path / "a"), _table(tmp_path / "b")
    assert a.schema.equals(schema.CURATED, check_metadata=False)
    assert a.num_rows > 30 and a.equals(b)
    ids = a.column("sample_id").to_pylist()
    assert len(set(ids)) == len(ids)


def test_process_pool_matches_single_process(jaffe_tree, tmp_path):
    curate("jaffe", jaffe_tree, tmp_path / "serial", single_process())
    curate("jaffe", jaffe_tree, tmp_path / "pool", single_process(run={"workers": 2, "shard_size": 8}))
    assert _table(tmp_path / "serial").equals(_table(tmp_path / "pool"))


def test_metrics_and_rejects_add_up(jaffe_tree, tmp_path):
    m = curate("jaffe", jaffe_tree, tmp_path / "o", single_process())
    on_disk = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert on_disk["curated"] == m["curated"] == _table(tmp_path / "o").num_rows
    rej = rows(tmp_path / "o" / "rejects.parquet")
    assert len(rej) == m["rejected"] and m["read"] == m["curated"] + m["rejected"]
    assert sum(m["curated_by_label"].values()) == m["curated"]
    assert all(r["reason"] and r["locator"] and r["source"] == "jaffe" for r in rej)


def test_target_set_drops_labels_outside_it_with_a_reason(jaffe_tree, tmp_path):
    m = curate("jaffe", jaffe_tree, tmp_path / "o", single_process(labels={"target_set": "basic6"}))
    assert "neutral" not in m["curated_by_label"]
    assert m["rejected_by_reason"]["label_outside_target_set"] == 6  # 3 subjects x 2 neutral repeats
    got = rows(tmp_path / "o" / "curated.parquet")
    classes = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
    assert all(classes[r["label_index"]] == r["label"] for r in got)


def test_a_failed_run_leaves_the_previous_output_and_no_staging(jaffe_tree, tmp_path, monkeypatch):
    out = tmp_path / "o"
    curate("jaffe", jaffe_tree, out, single_process())
    before = _table(out)

    import fer_data.faces.process as proc

    calls = {"n": 0}
    real = proc.fit_landmarks

    def exploding(images, boxes):  # the second shard's landmark fit fails
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("disk on fire")
        return real(images, boxes)

    monkeypatch.setattr(proc, "fit_landmarks", exploding)
    with pytest.raises(RuntimeError):
        curate("jaffe", jaffe_tree, out, single_process())
    assert _table(out).equals(before)
    assert sorted(p.name for p in out.iterdir()) == [
        "class_counts.csv",
        "curated.parquet",
        "metrics.json",
        "rejects.parquet",
    ]


def test_run_shard_writes_an_empty_part_for_an_empty_shard(jaffe_tree, tmp_path):
    counts = run_shard("jaffe", str(jaffe_tree), single_process(), {"keys": []}, 3, str(tmp_path))
    assert counts["read"] == 0
    t = pq.read_table(tmp_path / "curated.parquet" / "part-00003.parquet")
    assert t.num_rows == 0 and t.schema.equals(schema.CURATED, check_metadata=False)


def test_precropped_fallback_keeps_or_rejects_unfittable_crops():
    face = DemoFaces().face(3, 48)
    s = Sample(source="t", locator="f", label_native="3", label="happiness", pixels=face, precropped=True)
    row = process(s, single_process())
    assert row["aligned"] and row["bbox"] == [0, 0, 47, 47] and row["detector"] == "precropped"
    # a sanity check no fit can pass: the crop is kept unaligned, or rejected, as params say
    strict = {"min_eye_distance_ratio": 0.9, "max_eye_distance_ratio": 1.0}
    kept = process(s, single_process(faces=strict))
    assert kept["aligned"] is False and kept["landmarks"] is None and kept["roll_deg"] is None
    assert np.array_equal(np.frombuffer(kept["image"], np.uint8).reshape(48, 48), face)
    rejected = process(s, single_process(faces=strict | {"precropped_fallback": "reject"}))
    assert isinstance(rejected, Reject) and rejected.reason == "landmark_check_failed"
    assert "eye distance" in rejected.detail


def test_label_filter_reasons():
    p = single_process()

    def mk(label: str | None) -> Sample:
        return Sample(source="t", locator="x", label_native="n", label=label)

    assert label_reject(mk(None), p).reason == "unlabelled"
    assert label_reject(mk("not_an_emotion"), p).reason == "not_an_emotion"
    assert label_reject(mk("contempt"), p).reason == "label_outside_target_set"
    assert label_reject(mk("anger"), p) is None
    assert label_reject(mk(None), single_process(labels={"keep_unlabelled": True})) is None
