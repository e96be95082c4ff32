"""Great Expectations suites on small hand-made tables: what passes, what fails, what the reports say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from fer_data import schema, sources
from fer_data import validate as gxv
from fer_data.cli import main
from fer_data.labels import TARGET_SETS

CLASSES = TARGET_SETS["fer2013_7"]


def _landmarks(cx: float = 128.0, cy: float = 128.0, spread: float = 40.0) -> list[float]:
    rng = np.random.default_rng(0)
    return (np.array([cx, cy]) + rng.uniform(-spread, spread, (68, 2))).astype(np.float32).ravel().tolist()


def curated_row(source: str, i: int, label: str = "anger", **over) -> dict:
    row = {name: None for name in schema.CURATED.names}
    row.update(
        sample_id=f"{source}-{i:04d}",
        source=source,
        locator=f"img{i:04d}.png",
        label_native=label,
        label=label,
        label_index=CLASSES.index(label) if label in CLASSES else None,
        image=bytes(48 * 48),
        width=48,
        height=48,
        aligned=True,
        landmarks=_landmarks(24, 24, 10),
        landmarks_original=_landmarks(),
        bbox=[60, 60, 190, 190],
        detector="hog",
        det_score=1.2,
        n_faces=1,
        face_size=130.0,
        eye_distance=50.0,
        roll_deg=2.0,
        yaw=0.1,
        sharpness=150.0,
        brightness=120.0,
        contrast=40.0,
        orig_width=256,
        orig_height=256,
        raw_sha256="0" * 64,
        pipeline_version="test",
    )
    row.update(over)
    return row


def write_table(
    folder: Path, source: str, curated: list[dict], rejects: list[tuple[str, str]], read: int | None = None
) -> Path:
    """A `fer-data curate` output folder: curated + rejects parts and metrics.json."""
    for name, rows, table_schema in (
        ("curated.parquet", curated, schema.CURATED),
        (
            "rejects.parquet",
            [{"source": source, "locator": loc, "reason": reason, "detail": "test"} for loc, reason in rejects],
            schema.REJECTS,
        ),
    ):
        (folder / name).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=table_schema), folder / name / "part-00000.parquet")
    reasons: dict[str, int] = {}
    for _, reason in rejects:
        reasons[reason] = reasons.get(reason, 0) + 1
    metrics = {
        "source": source,
        "read": len(curated) + len(rejects) if read is None else read,
        "curated": len(curated),
        "rejected": len(rejects),
        "rejected_by_reason": reasons,
        "unaligned": 0,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def good_table(folder: Path, source: str = "good") -> Path:
    rows = [curated_row(source, i, CLASSES[i % 7]) for i in range(21)]
    return write_table(
        folder, source, rows, [("broken.png", "unreadable_image"), ("x.png", "label_outside_target_set")]
    )


def bad_table(folder: Path) -> Path:
    s = "bad"
    rows = [curated_row(s, i, CLASSES[i % 7]) for i in range(10)]
    rows += [
        curated_row(s, 1, locator="copy.png"),  # duplicate sample_id
        curated_row(s, 11, "contempt", label_index=None),  # outside the target set
        curated_row(s, 12, image=bytes(47 * 48)),  # wrong byte length
        curated_row(s, 13, landmarks_original=_landmarks(400)),  # landmarks off the frame
        curated_row(s, 14, brightness=300.0),  # impossible grey level
        curated_row(s, 15, "happiness", label_index=0),  # index of another class
    ]
    rejects = [(f"r{i}.png", "no_face") for i in range(12)] + [("odd.png", "Bad Reason!")]
    return write_table(folder, s, rows, rejects, read=40)  # 29 rows are present, metrics claim 40


@pytest.fixture(scope="module", autouse=True)
def _named_sources():
    """params.yaml lists only registered sources: register this module's `good` and `bad` (read as JAFFE)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("good", "bad"):
            mp.setitem(sources.REGISTRY, name, sources.REGISTRY["jaffe"])
        yield


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """One validation of a clean and a faulty source through the CLI (one GX context for the module)."""
    tmp = tmp_path_factory.mktemp("validation")
    good, bad = good_table(tmp / "curated" / "good"), bad_table(tmp / "curated" / "bad")
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump({"sources": {"good": {}, "bad": {}}}))
    res = CliRunner().invoke(
        main, ["validate", str(good), str(bad), "--params", str(params), "--report", str(tmp / "report")]
    )
    return tmp, res


def _failed(output: str) -> set[tuple[str, str, str]]:
    return set(re.findall(r"^\s+(\w+\.\w+): (\w+)\(([\w, ]*)\)", output, flags=re.M))


def test_each_fault_fails_its_expectation_and_nothing_else(failed_run):
    _, res = failed_run
    assert res.exit_code == 1
    assert _failed(res.output) == {
        ("bad.curated", "expect_column_values_to_be_unique", "sample_id"),
        ("bad.curated", "expect_column_values_to_be_in_set", "label"),
        ("bad.curated", "expect_column_pair_values_to_be_equal", "image_nbytes, image_expected_nbytes"),
        ("bad.curated", "expect_column_pair_values_to_be_equal", "label_index, expected_label_index"),
        ("bad.curated", "expect_column_values_to_be_between", "landmarks_max_frac"),
        ("bad.curated", "expect_column_values_to_be_between", "brightness"),
        ("bad.rejects", "expect_table_row_count_to_equal", ""),
        ("bad.rejects", "expect_column_values_to_match_regex", "reason"),
        ("bad.rejects", "expect_column_mean_to_be_between", "data_reject"),
        ("bad.rejects", "expect_column_mean_to_be_between", "face_found"),
    }, res.output


def test_failure_message_and_reports_name_the_failures(failed_run):
    tmp, res = failed_run
    report = tmp / "report"
    assert f"report: {report / 'index.html'}" in res.output
    assert "bad.curated: expect_column_values_to_be_unique(sample_id) 2 unexpected" in res.output
    summary = json.loads((report / "summary.json").read_text())
    assert not summary["success"] and summary["sources"]["good"]["success"]
    assert summary["sources"]["good"]["reject_rate"] == pytest.approx(
        1 / 22, abs=1e-4
    )  # the policy reject is not counted
    assert summary["sources"]["bad"]["face_found_rate"] == pytest.approx(16 / 28, abs=1e-4)
    assert summary["sources"]["good"]["class_share"] == {c: pytest.approx(3 / 21, abs=1e-4) for c in CLASSES}
    index = (report / "index.html").read_text()
    assert "FAILED" in index and "expect_column_values_to_be_unique" in index and "landmarks_max_frac" in index
    assert not re.search(r"<script|<link|src=|url\(", index)  # self-contained: opens offline
    links = re.findall(r'href="(gx/validations/[^"]+)"', index)
    assert len(links) == 4 and all((report / link).exists() for link in links)
    (bad_page,) = (report / "gx/validations/bad/curated").rglob("*.html")
    assert "landmarks_max_frac" in bad_page.read_text() and "brightness" in bad_page.read_text()
    assert (report / "gx/index.html").exists()


def test_manifest_refuses_unvalidated_tables(failed_run):
    tmp, _ = failed_run
    params = tmp / "params.yaml"
    res = CliRunner().invoke(
        main,
        [
            "manifest",
            "--params",
            str(params),
            "--curated-root",
            str(tmp / "curated"),
            "--report",
            str(tmp / "report"),
            "--out",
            str(tmp / "manifest.json"),
        ],
    )
    assert res.exit_code == 1 and "failed validation: bad" in res.output
    assert not (tmp / "manifest.json").exists()


def test_outcome_rates_leave_policy_rejects_out(tmp_path):
    curated = pd.DataFrame([{"source": "s", "locator": f"c{i}"} for i in range(6)])
    rejects_dir = tmp_path / "rejects.parquet"
    rejects_dir.mkdir()
    rows = [
        {"source": "s", "locator": f"r{i}", "reason": r, "detail": ""}
        for i, r in enumerate(["no_face", "landmark_check_failed", "not_an_emotion", "unreadable_image"])
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema.REJECTS), rejects_dir / "part-00000.parquet")
    frame = gxv.outcomes_frame(rejects_dir, curated, ["not_an_emotion"], ["unreadable_image"])
    assert frame["data_reject"].astype("Float64").mean() == pytest.approx(3 / 9)  # 3 of the 9 non-policy inputs
    assert frame["face_found"].astype("Float64").mean() == pytest.approx(
        7 / 8
    )  # 6 curated + 1 fit failure of 8 searched
    assert frame["reason_unreadable_image"].sum() == 1


def test_landmark_extent_handles_missing_fits():
    points = pa.array([_landmarks(128, 128, 10), None, _landmarks(250, 128, 20)], type=pa.list_(pa.float32(), 136))
    lo, hi = gxv._landmark_extent(points, np.array([256.0, 48.0, 256.0]), np.array([256.0, 48.0, 256.0]))
    assert np.isnan(lo[1]) and np.isnan(hi[1])
    assert 0.4 < lo[0] < hi[0] < 0.6 and hi[2] > 1.0


def test_settings_apply_source_overrides():
    raw = {
        "validation": {
            "max_reject_rate": 0.1,
            "ranges": {"contrast": None},
            "sources": {"ckplus": {"max_reject_rate": 0.5}},
        }
    }
    assert gxv.settings(raw, "jaffe")["max_reject_rate"] == 0.1
    assert gxv.settings(raw, "ckplus")["max_reject_rate"] == 0.5
    assert gxv.settings(raw, "jaffe")["ranges"]["contrast"] is None  # a range can be switched off
    assert gxv.settings({}, "jaffe")["min_face_found_rate"] == gxv.DEFAULTS["min_face_found_rate"]


def test_two_tables_of_one_source_are_refused(tmp_path):
    a, b = good_table(tmp_path / "a", "jaffe"), good_table(tmp_path / "b", "jaffe")
    res = CliRunner().invoke(main, ["validate", str(a), str(b), "--report", str(tmp_path / "r")])
    assert res.exit_code == 1 and "more than one table for source(s) jaffe" in res.output


def test_a_folder_that_is_not_a_curate_output_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a `fer-data curate` output"):
        gxv.TableRef.from_dir(tmp_path)


def test_misspelt_settings_are_refused():
    with pytest.raises(ValueError, match="unknown setting.*max_reject_rat\\b"):
        gxv.settings({"validation": {"max_reject_rat": 0.1}}, "jaffe")
    with pytest.raises(ValueError, match="validation.sources.jaffe: unknown setting"):
        gxv.settings({"validation": {"sources": {"jaffe": {"min_face_rate": 0.1}}}}, "jaffe")
    with pytest.raises(ValueError, match="no curated column brightnes\\b"):
        gxv.settings({"validation": {"ranges": {"brightnes": {"min": 0}}}}, "jaffe")
