"""The reject-reason registry: one definition of each reason's kind, read by the engine, the flow and the validator."""

from __future__ import annotations

import json
import re
from collections import Counter

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fer_data import schema, sources
from fer_data import validate as gxv
from fer_data.records import (
    REASONS,
    Kind,
    Reason,
    face_found_counts,
    face_search,
    kind_of,
    reason_table,
    run_summary,
)

#: A run of Aff-Wild2 as the engine counts it: every face-related reason, a policy one and a data problem.
AFFWILD2_REJECTS = ["no_face"] * 3 + ["no_face_on_side"] * 4 + ["landmark_check_failed"] * 2
AFFWILD2_REJECTS += ["unannotated"] * 5 + ["unreadable_image"]
AFFWILD2_CURATED = 11


def test_sources_declare_their_policy_reasons():
    assert kind_of("between_neutral_and_peak", sources.reasons("ckplus")) == Kind.POLICY
    assert kind_of("no_majority", sources.reasons("ferplus")) == Kind.POLICY
    assert kind_of("unannotated", sources.reasons("affwild2")) == Kind.POLICY
    assert kind_of("unannotated", sources.reasons("jaffe")) == Kind.DATA  # not JAFFE's: undeclared, a data problem
    every = sources.reasons()
    assert {"not_a_face", "between_neutral_and_peak", "label_outside_target_set"} <= {
        c for c, r in every.items() if r.kind == Kind.POLICY
    }
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code) and r.meaning for code, r in every.items())


def test_a_reason_declared_with_two_kinds_is_refused():
    with pytest.raises(ValueError, match="no_face"):
        reason_table([Reason("no_face", Kind.POLICY, "clash")])


def test_face_search_outcomes():
    assert face_search(None) is True  # curated: a face was found
    assert face_search("landmark_check_failed") is True
    assert face_search("no_face_on_side") is False
    assert face_search("unreadable_image") is None and face_search("some_new_code") is None
    assert face_found_counts(5, {"no_face": 2, "landmark_check_failed": 1, "unlabelled": 9}) == (6, 8)
    assert REASONS["bad_face_box"].kind == Kind.NO_FACE


def test_affwild2_face_found_rate_is_the_same_in_flow_summary_and_validator(tmp_path):
    from pipelines.curate_flow import _summary

    rejects = tmp_path / "rejects.parquet"
    rejects.mkdir()
    rows = [
        {"source": "affwild2", "locator": f"v/{i:05d}.jpg", "reason": r, "detail": ""}
        for i, r in enumerate(AFFWILD2_REJECTS)
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.REJECTS), rejects / "part-00000.parquet")
    curated = pd.DataFrame([{"source": "affwild2", "locator": f"c/{i:05d}.jpg"} for i in range(AFFWILD2_CURATED)])
    frame = gxv.outcomes_frame(rejects, curated, table=sources.reasons("affwild2"))
    validator_rate = frame["face_found"].astype("Float64").mean()

    counts = Counter(AFFWILD2_REJECTS)
    metrics = {
        "read": AFFWILD2_CURATED + len(AFFWILD2_REJECTS),
        "curated": AFFWILD2_CURATED,
        "unaligned": 0,
        "rejected": len(AFFWILD2_REJECTS),
        "rejected_by_reason": dict(counts),
        "seconds": 1.0,
        "images_per_second": 1.0,
    }
    found, searched = map(
        int, re.search(r"faces found in (\d+) of (\d+) searched", _summary("affwild2", metrics)).groups()
    )
    assert (found, searched) == (11 + 2, 11 + 2 + 3 + 4)  # no_face_on_side counts as searched, not found
    assert found / searched == pytest.approx(validator_rate)
    # the reject rate leaves Aff-Wild2's unannotated frames out (policy): 3+4+2+1 data rejects of 11+10 kept inputs
    assert frame["data_reject"].astype("Float64").mean() == pytest.approx(10 / 21)


def test_a_runs_metrics_count_rejects_by_kind_with_the_sources_own_reasons(tmp_path):
    summary = run_summary(AFFWILD2_CURATED, Counter(AFFWILD2_REJECTS), sources.reasons("affwild2"))
    assert summary["rejected_by_kind"] == {"data": 2 + 1, "policy": 5, "no_face": 3 + 4}
    assert (summary["face_found"], summary["face_searched"]) == (11 + 2, 11 + 2 + 3 + 4)
    assert summary["face_found_rate"] == pytest.approx(13 / 20)
    assert run_summary(0, {})["face_found_rate"] is None  # nothing searched: no rate, not 0


def test_curate_writes_the_summary_into_metrics_json(tmp_path):
    from fer_data import params as params_mod
    from fer_data.curate import curate

    root = tmp_path / "folders"
    (root / "happy").mkdir(parents=True)
    (root / "happy" / "broken.png").write_bytes(b"not a png")
    metrics = curate("folder", root, tmp_path / "out", params_mod.resolve({"run": {"workers": 1}}))
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["rejected_by_kind"] == metrics["rejected_by_kind"] == {"data": 1, "policy": 0, "no_face": 0}
    assert written["face_found_rate"] is None
