"""The corpus on real data: CK+ merged with CK+48 read as class folders without subject ids.

CK+48 holds crops of the last three frames of CK+ sequences: the peak frame is also in CK+
(640x490), the two before it are near copies, and the 20 people are the same. Merged naively
they leak people and frames across splits. Curated once per session (a few seconds a source
here); skipped when ../shared/realdata is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from support import realdata

from fer_data import params as params_mod
from fer_data.corpus import build_corpus, table_from_dir
from fer_data.curate import curate

pytestmark = pytest.mark.realdata
FRAME = re.compile(r"(S\d{3})_(\d{3})_(\d{8})\.png$")


def _embeddings_supported() -> bool:
    return "embeddings" in params_mod.DEFAULTS["faces"]


@pytest.fixture(scope="session")
def ck_tables(tmp_path_factory) -> dict[str, Path]:
    """CK+ (ckplus layout) and CK+48 (folder layout, precropped, no subject ids), curated once."""
    ckplus, ck48 = realdata("ckplus"), realdata("ckplus48", "CK+48")
    out = tmp_path_factory.mktemp("ck-curated")
    raw = {
        "run": {"workers": 1},
        "sources": {"folder": {"precropped": True, "subject_pattern": None}},
    }
    if _embeddings_supported():
        raw["faces"] = {"embeddings": True}
    p = params_mod.resolve(raw)
    curate("ckplus", ckplus, out / "ckplus", p)
    curate("folder", ck48, out / "ck48", p)
    return {"ckplus": out / "ckplus", "ck48": out / "ck48"}


@pytest.fixture(scope="session")
def ck_corpus(ck_tables, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("ck-corpus")
    corpus = {"splits": {"ratios": {"train": 0.6, "val": 0.2, "test": 0.2}}}
    if not _embeddings_supported():
        corpus["identities"] = {"cluster": False}
    build_corpus([table_from_dir(p) for p in ck_tables.values()], out, {"corpus": corpus})
    groups = pd.read_parquet(out / "groups.parquet")
    frames = groups["locator"].str.extract(FRAME)
    return groups.assign(person=frames[0], frame=frames[0] + "_" + frames[1] + "_" + frames[2])


def test_every_person_stays_in_one_split(ck_corpus):
    g = ck_corpus
    assert g["person"].notna().all() and g["person"].nunique() == 20
    assert set(g["source"]) == {"ckplus", "folder"}
    splits = g.groupby("person")["split"].nunique()
    assert (splits == 1).all(), splits[splits > 1]
    assert g["split"].nunique() == 3  # 20 people are enough to fill every split


def test_each_shared_peak_frame_lands_in_one_duplicate_group(ck_corpus):
    g = ck_corpus
    shared = set(g.loc[g["source"] == "ckplus", "frame"]) & set(g.loc[g["source"] == "folder", "frame"])
    assert len(shared) == 61  # every labelled CK+ sequence's peak frame is in CK+48
    both = g[g["frame"].isin(shared)]
    per_frame = both.groupby("frame")["dup_group"].nunique()
    assert (per_frame == 1).all(), per_frame[per_frame > 1]
    # One copy of each is kept: the 640x490 original (larger face), not the 48x48 crop.
    kept = both[both["kept"]]
    assert kept["frame"].is_unique and set(kept["source"]) == {"ckplus"}


def test_different_expressions_of_a_person_are_not_duplicates(ck_corpus):
    """A sequence's neutral first frame and its peak are one person, never one image."""
    g = ck_corpus[ck_corpus["source"] == "ckplus"]
    conflicts = g[g["label_conflict"]]
    assert len(conflicts) <= 0.05 * len(g), conflicts[["locator", "label", "dup_group"]]


def test_crops_without_subject_ids_join_their_person(ck_corpus):
    """CK+48 has no subject ids: its rows take the CK+ person's identity (clustered, or through a copy)."""
    if not _embeddings_supported():
        pytest.skip("curation without face descriptors: identities come from subject ids only")
    g = ck_corpus
    crops = g[g["source"] == "folder"]
    right = (crops["identity"] == "ckplus:" + crops["person"]).mean()
    assert right >= 0.95, crops[crops["identity"] != "ckplus:" + crops["person"]][["locator", "identity"]]
    ck = g[g["source"] == "ckplus"]
    assert (ck["identity"] == "ckplus:" + ck["person"]).all()  # known subjects keep their own name
