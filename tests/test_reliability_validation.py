"""Validation defaults fit clean real data, still fail broken data, and name the rows a steward must judge."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from support import needs_realdata, realdata

from fer_data import params as params_mod
from fer_data import validate as gxv
from fer_data.curate import curate

#: The real samples of ../shared/realdata a new user would point `sources` at, everything else default.
REAL_SOURCES = {
    "jaffe": {"root": ("jaffe",)},
    "ckplus": {"root": ("ckplus",)},
    "fer2013": {"root": ("fer2013",)},  # the image-folder variant (images/train, images/test)
    "folder": {"root": ("ckplus48", "CK+48"), "precropped": True},
}


@pytest.fixture(scope="module")
def real_curated(tmp_path_factory) -> tuple[Path, dict]:
    """The real samples curated with default params (two workers to keep the module short)."""
    out = tmp_path_factory.mktemp("real")
    raw = {"sources": {}, "run": {"workers": 2}}
    for name, spec in REAL_SOURCES.items():
        raw["sources"][name] = {**spec, "root": str(realdata(*spec["root"]))}
    p = params_mod.resolve(raw)
    for name in REAL_SOURCES:
        curate(name, p.source(name)["root"], out / "curated" / name, p)
    return out, raw


@needs_realdata
def test_clean_real_data_passes_the_default_expectations(real_curated):
    out, raw = real_curated
    refs = gxv.tables_from_params(raw, out / "curated")
    report = gxv.validate_tables(refs, params_mod.resolve(raw), raw, out / "report-clean")
    assert report.success, report.failure_message()
    assert {s.source for s in report.sources} == set(REAL_SOURCES)


def _plant(src: Path, dst: Path, broken: int) -> list[dict]:
    """A copy of a curated output whose first BROKEN rows have landmarks far outside the frame."""
    shutil.copytree(src, dst)
    table = pq.read_table(src / "curated.parquet")
    points = table.column("landmarks_original").to_pylist()
    width = table.column("orig_width").to_pylist()
    chosen = [i for i, pts in enumerate(points) if pts is not None][:broken]  # aligned rows have landmarks
    for i in chosen:
        points[i] = [v + 2 * width[i] for v in points[i]]  # two frames to the right
    col = table.schema.get_field_index("landmarks_original")
    table = table.set_column(col, table.schema.field(col), pa.array(points, table.schema.field(col).type))
    shutil.rmtree(dst / "curated.parquet")
    (dst / "curated.parquet").mkdir()
    pq.write_table(table, dst / "curated.parquet" / "part-00000.parquet")
    return table.take(chosen).select(["sample_id", "locator"]).to_pylist()


@pytest.fixture(scope="module")
def broken_report(real_curated) -> tuple[gxv.Report, list[dict], Path]:
    """Validation of a copy of the real FER2013 table with 8 of its 385 rows broken (2 % > 1 - mostly)."""
    out, raw = real_curated
    total = pq.read_metadata(next((out / "curated" / "fer2013" / "curated.parquet").glob("*.parquet"))).num_rows
    planted = _plant(out / "curated" / "fer2013", out / "broken" / "fer2013", broken=8)
    assert len(planted) / total > 1 - gxv.DEFAULTS["landmark_mostly"]
    refs = [gxv.TableRef.from_dir(out / "broken" / "fer2013")]
    return gxv.validate_tables(refs, params_mod.resolve(raw), raw, out / "report-broken"), planted, out


@needs_realdata
def test_planted_broken_rows_still_fail_and_are_named_with_their_faces(broken_report):
    report, planted, out = broken_report
    assert not report.success
    (failure,) = report.failures()
    assert "expect_column_values_to_be_between(landmarks_max_frac)" in failure
    message = report.failure_message()
    named = set(re.findall(r"(\S+) \(([0-9a-f]{16})\)", message))
    assert named and named <= {(r["locator"], r["sample_id"]) for r in planted}
    page = (out / "report-broken" / "index.html").read_text()
    for row in planted:
        assert f'alt="{row["locator"]}"' in page and row["sample_id"] in page  # the face is shown, captioned
    assert json.loads((out / "report-broken" / "summary.json").read_text())["success"] is False


@needs_realdata
def test_the_report_of_a_failed_validation_shows_the_offending_faces_offline(broken_report, chromium):
    """The steward's page opens offline in a real browser with every offending face loaded."""
    from browser import render

    _, planted, out = broken_report
    shown = render(out / "report-broken" / "index.html", out / "shots", binary=chromium)
    shown.assert_offline_complete(min_images=len(planted))
    assert "offending rows" in shown.dom


@needs_realdata
def test_one_row_beyond_the_margin_does_not_block_a_source(real_curated):
    """The failure of issue #9: one landmark of one face slightly past the margin blocked FER2013."""
    out, raw = real_curated
    _plant(out / "curated" / "fer2013", out / "one-off" / "fer2013", broken=1)
    refs = [gxv.TableRef.from_dir(out / "one-off" / "fer2013")]
    report = gxv.validate_tables(refs, params_mod.resolve(raw), raw, out / "report-one-off")
    assert report.success, report.failure_message()
    ok = pc.sum(pc.equal(pq.read_table(out / "one-off" / "fer2013" / "curated.parquet").column("aligned"), True))
    assert ok.as_py() > 0


def test_flow_commands_log_an_expected_failure_in_one_line_without_traceback():
    import logging

    from fer_data.output import OutputError
    from pipelines.cli import _NoTracebackFor

    try:
        raise OutputError("cannot write out: no space left on device (ENOSPC)")
    except OutputError:
        import sys

        record = logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "boom %s", ("x",), sys.exc_info())
    assert _NoTracebackFor((OutputError,)).filter(record)
    assert record.getMessage() == "OutputError (message below)" and record.exc_info is None
    other = logging.LogRecord(
        "prefect.flow_runs", logging.ERROR, __file__, 1, "boom", (), (ValueError, ValueError(), None)
    )
    assert _NoTracebackFor((OutputError,)).filter(other) and other.exc_info is not None  # bugs keep their traceback
