"""The corpus steward page, on a contract-shaped corpus assembled from real curated demo tables."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fer_data.reports import corpus as report
from fer_data.reports.corpus import ReportParams, write_corpus_report

EVIL = '../../../etc/passwd<script>alert("x")</script>.png'


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> dict[str, dict[str, str]]:
    """Curated demo tables of JAFFE, CK+ and FER2013 (with a hostile reject planted in JAFFE's)."""
    from corpus_fixture import curate_demo

    work = tmp_path_factory.mktemp("curated")
    sources = curate_demo(work)
    # A reject whose locator is hostile: it must be escaped and never read outside the dataset root.
    rejects = Path(sources["jaffe"]["curated"]) / "rejects.parquet"
    evil = pa.table({"source": ["jaffe"], "locator": [EVIL], "reason": ["no_face"], "detail": ["<b>bold</b>"]})
    pq.write_table(evil.cast(pq.read_schema(next(rejects.glob("*.parquet")))), rejects / "part-99999.parquet")
    return sources


@pytest.fixture(scope="module")
def corpus(curated, tmp_path_factory) -> Path:
    """A contract-shaped corpus with planted decisions (every section has something to show)."""
    from corpus_fixture import build_corpus

    return build_corpus(curated, tmp_path_factory.mktemp("corpus") / "out")


@pytest.fixture(scope="module")
def page(corpus) -> str:
    out = write_corpus_report(corpus, corpus / "report" / "index.html")
    assert out == corpus / "report" / "index.html"
    return out.read_text()


def _figures(html: str, section: str) -> list[str]:
    body = html.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
    return re.findall(r"<figure class=face>.*?</figure>", body)


def test_every_section_is_there_and_names_the_planted_decisions(corpus, page):
    manifest = json.loads((corpus / "manifest.json").read_text())
    for anchor in ("overview", "classes", "faces", "landmarks", "quality", "duplicates", "identities", "conflicts"):
        assert f'<section id="{anchor}">' in page
    for cls in manifest["classes"]:
        assert f"<h3>{cls}</h3>" in page
    groups = pd.read_parquet(corpus / "groups.parquet")
    conflict = groups[groups["label_conflict"]]["dup_group"].iloc[0]
    conflicts = page.split('<section id="conflicts">', 1)[1].split("</section>", 1)[0]
    assert conflict in conflicts and "happiness" in conflicts
    identities = page.split('<section id="identities">', 1)[1].split("</section>", 1)[0]
    assert "cluster-000001" in identities and "jaffe:KA" not in identities  # one source: not a cross-source cluster
    dups = _figures(page, "duplicates")
    assert any("original | aligned" in f for f in dups)  # CK+ files: the original beside the aligned face
    assert any("aligned only (no file)" in f and "fer2013.csv:" in f for f in dups)  # CSV rows: aligned only


def test_sections_show_at_most_the_configured_number_of_faces(corpus, page):
    per_class = json.loads((corpus / "manifest.json").read_text())["params"]["report"]["faces_per_class"]
    faces = _figures(page, "faces")
    assert 0 < len(faces) <= per_class * 7
    small = write_corpus_report(corpus, corpus / "small.html", {"faces_per_class": 1, "worst_per_metric": 1})
    assert len(_figures(small.read_text(), "faces")) == 7
    assert len(_figures(small.read_text(), "quality")) == 9  # every metric these shards have, one face each
    assert small.stat().st_size < (corpus / "report" / "index.html").stat().st_size


def test_rejects_are_counted_by_reason_with_thumbnails_of_the_files(corpus, page):
    rejects = page.split('<section id="rejects">', 1)[1].split("</section>", 1)[0]
    manifest = json.loads((corpus / "manifest.json").read_text())
    jaffe = pd.read_parquet(Path(manifest["sources"]["jaffe"]["curated"]) / "rejects.parquet")
    n = int((jaffe["reason"] == "no_face").sum())
    assert f"<td>jaffe</td><td>no_face</td><td class=num>{n}</td>" in rejects
    shown = [f for f in _figures(page, "rejects") if ".tiff" in f]
    assert shown, "no thumbnail of a rejected JAFFE file"
    assert "fer2013.csv:" in rejects and "no image file" in rejects  # CSV rejects: listed, no picture


def test_hostile_locators_are_escaped_and_not_followed(page):
    assert "<script>" not in page and "<b>bold</b>" not in page
    assert "etc/passwd&lt;script&gt;" in page  # listed as text, and no picture of it
    assert not report.original_thumbnail(Path("/tmp"), "../etc/passwd", 64)


def test_the_page_is_deterministic_and_written_atomically(corpus, page):
    again = write_corpus_report(corpus, corpus / "again.html")
    assert again.read_text() == page
    assert not list(corpus.glob(".*.tmp"))


def test_params_are_validated_with_the_key_path():
    with pytest.raises(ValueError, match=r"^corpus\.report\.thumb_px: "):
        report.report_params({"thumb_px": 4})
    with pytest.raises(ValueError, match=r"^corpus\.report\.face_size: "):
        report.report_params({"face_size": 4})
    assert report.report_params(None) == ReportParams()


def test_fetch_rows_reads_exactly_the_wanted_rows(corpus):
    shards = sorted((corpus / "shards").rglob("*.parquet"))
    every = pd.concat([pd.read_parquet(s, columns=["sample_id", "label"]) for s in shards])
    wanted = every["sample_id"].iloc[::17].tolist()
    got = report.fetch_rows(shards, wanted + ["not-there"], ["label", "image"])
    assert sorted(got) == sorted(wanted)
    assert all(got[i]["label"] == every.set_index("sample_id").loc[i, "label"] for i in wanted)


def test_top_n_while_streaming_equals_sorting_everything():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"sample_id": [f"{i:04x}" for i in range(500)], "g": rng.integers(0, 3, 500)})
    key = pd.Series(rng.integers(0, 50, 500).astype(float))
    top = report.TopN(5, largest=True)
    for start in range(0, 500, 64):
        top.update(frame.iloc[start : start + 64], key.iloc[start : start + 64], by="g")
    full = frame.assign(_key=key).sort_values(["_key", "sample_id"], ascending=[False, True])
    expect = full.groupby("g", sort=False).head(5)
    assert sorted(top.rows["sample_id"]) == sorted(expect["sample_id"])


def test_missing_originals_and_curated_tables_still_give_a_page(corpus, tmp_path):
    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for v in manifest["sources"].values():
        v["root"], v["curated"] = "gone/raw", "gone/curated"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    html = write_corpus_report(copy, copy / "index.html").read_text()
    assert "no rejects table found" in html and "aligned only (no file)" in html


def test_the_page_renders_offline_in_chromium(chromium, corpus, page, tmp_path):
    from browser import render

    shown = render(corpus / "report" / "index.html", tmp_path, binary=chromium)
    shown.assert_offline_complete(min_images=page.count("<img "))
    assert not shown.console
    assert 'id="rejects"' in shown.dom


@pytest.mark.slow
def test_the_report_of_a_real_corpus_build_renders_offline(chromium, curated, tmp_path):
    """`fer-data corpus` (fer_data.corpus.build_corpus) writes this page; here on the curated demo tables."""
    from browser import render

    from fer_data import corpus as corpus_mod

    tables = [corpus_mod.Table(name, Path(v["curated"]), v["root"]) for name, v in curated.items()]
    corpus_mod.build_corpus(tables, tmp_path / "corpus", {"corpus": {"identities": {"cluster": False}}})
    index = tmp_path / "corpus" / "report" / "index.html"
    html = index.read_text()
    assert "original | aligned" in html and "aligned only (no file)" in html  # files and CSV rows
    assert "Not in these shards" in html or "most padded" in html
    shown = render(index, tmp_path / "shots", binary=chromium)
    shown.assert_offline_complete(min_images=html.count("<img "))
    assert not shown.console


def test_landmarks_are_drawn_on_the_originals_face_box_too(page, tmp_path):
    assert any("original | aligned" in f and ".tiff" in f for f in _figures(page, "landmarks"))  # JAFFE files
    assert any("aligned" in f and "fer2013.csv:" in f for f in _figures(page, "landmarks"))  # CSV: aligned only
    import cv2

    cv2.imwrite(str(tmp_path / "frame.png"), np.full((100, 200), 128, np.uint8))
    pts = np.stack([np.full(68, 120.0), np.linspace(40, 60, 68)], axis=1)  # a vertical line at x = 120
    out = report.original_with_landmarks(tmp_path, "frame.png", [100, 30, 140, 70], pts.ravel(), px=120)
    # The box (40 px) plus a 25 % margin each side is 60 px, shown at 120 px: x = 120 lands at (120 - 90) * 2.
    assert out.shape == (120, 120, 3)
    colourful = out.max(axis=2).astype(int) - out.min(axis=2) > 60
    assert colourful[:, 60].sum() > 30 and not colourful[:, 5].any()
    assert report.original_with_landmarks(tmp_path, "fer2013.csv:7", [0, 0, 1, 1], pts.ravel(), 64) is None
