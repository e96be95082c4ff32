"""fer-data corpus on synthetic curated tables of real faces: leaks, splits, shards, gate, params."""

from __future__ import annotations

import json
from pathlib import Path

import corpus_tables as ct
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from fer_data.cli import main
from fer_data.corpus import CorpusGateFailed, CorpusInputError, build_corpus, resolve, table_from_dir

SEEDS = (0, 1, 2, 3)


def _world(root: Path) -> dict[str, Path]:
    """Three sources: alpha and beta without subject ids, gamma with them; planted copy and same-person pair."""
    alpha = [
        ct.row("alpha", f"a/{i:03d}.png", ct.face(i), ct.labelled(i), embedding=ct.photo_vector(i, 0))
        for i in range(40)
    ]
    beta = [
        ct.row("beta", f"b/{i:03d}.jpg", ct.face(i), ct.labelled(i), embedding=ct.photo_vector(i, 0))
        for i in range(40, 70)
    ]
    # A copy of alpha's face 3 (rescaled, re-encoded, brighter, mirrored), smaller in its original.
    beta.append(
        ct.row(
            "beta", "b/copy.jpg", ct.copy_of(ct.face(3)), ct.labelled(3), embedding=ct.photo_vector(3, 1), face_size=50
        )
    )
    # Another photo of alpha's person 5 (a different image), no subject ids anywhere.
    beta.append(ct.row("beta", "b/same-person.jpg", ct.face(75), ct.labelled(2), embedding=ct.photo_vector(5, 2)))
    gamma = [
        ct.row(
            "gamma",
            f"g/s{i % 5}_{i:03d}.png",
            ct.face(80 + i),
            ct.labelled(i),
            subject=f"s{i % 5}",
            split="test" if i % 5 == 0 else "train",
            embedding=ct.photo_vector(200 + i % 5, i),
        )
        for i in range(20)
    ]
    return {
        name: ct.write_table(root / name, name, rows)
        for name, rows in [("alpha", alpha), ("beta", beta), ("gamma", gamma)]
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    return _world(tmp_path_factory.mktemp("world"))


def _build(world: dict[str, Path], out: Path, **corpus) -> dict:
    tables = [table_from_dir(p) for p in world.values()]
    return build_corpus(tables, out, {"corpus": corpus})


def _groups(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "groups.parquet")


def _id(source: str, locator: str) -> str:
    return ct.row(source, locator, ct.face(0), "anger")["sample_id"]


@pytest.fixture(scope="module")
def built(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    _build(world, out)
    return out


def test_planted_copy_and_same_person_never_straddle_splits(world, tmp_path):
    copy, original = _id("beta", "b/copy.jpg"), _id("alpha", "a/003.png")
    other_photo, person = _id("beta", "b/same-person.jpg"), _id("alpha", "a/005.png")
    for seed in SEEDS:
        out = tmp_path / f"seed{seed}"
        _build(world, out, splits={"seed": seed, "ratios": {"train": 0.4, "val": 0.3, "test": 0.3}})
        g = _groups(out).set_index("sample_id")
        # The copy is a duplicate of the original: one group, the larger original kept, one split.
        assert g.loc[copy, "dup_group"] == g.loc[original, "dup_group"] == original
        assert g.loc[original, "kept"] and not g.loc[copy, "kept"] and g.loc[copy, "drop_reason"] == "duplicate"
        assert g.loc[copy, "split"] == g.loc[original, "split"]
        # Two photos of one person (no subject ids): one identity, one leak group, one split; both kept.
        assert g.loc[other_photo, "identity"] == g.loc[person, "identity"] is not None
        assert g.loc[other_photo, "identity"].startswith("cluster-")
        assert g.loc[other_photo, "leak_group"] == g.loc[person, "leak_group"]
        assert g.loc[other_photo, "split"] == g.loc[person, "split"]
        assert g.loc[other_photo, "kept"] and g.loc[person, "kept"]
        assert g.loc[other_photo, "dup_group"] != g.loc[person, "dup_group"]  # same person, not a copy
        # No identity, duplicate group or leak group in two splits, over every row.
        for key in ("dup_group", "identity", "leak_group"):
            assert (g.dropna(subset=[key]).groupby(key)["split"].nunique() == 1).all(), key


def test_known_subjects_are_identities_and_people_are_not_merged(built):
    g = _groups(built)
    gamma = g[g["source"] == "gamma"]
    assert set(gamma["identity"]) == {f"gamma:s{k}" for k in range(5)}
    assert (gamma.groupby("identity")["split"].nunique() == 1).all()
    alpha = g[g["source"] == "alpha"]
    # Forty different people: no identity joins two of alpha's rows, except through the planted pair.
    assert alpha["identity"].dropna().value_counts().max() == 1


def test_shards_read_back_as_the_manifest_says(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["kind"] == "fer-data-corpus" and manifest["classes"] == list(ct.CLASSES)
    groups = _groups(built)
    assert len(groups) == 40 + 32 + 20 and groups["sample_id"].is_unique
    seen = []
    for entry in manifest["shards"]:
        path = built / entry["path"]
        table = pq.read_table(path)
        assert table.num_rows == entry["rows"] and path.stat().st_size == entry["bytes"]
        assert pq.ParquetFile(path).metadata.num_row_groups == entry["row_groups"]
        frame = table.to_pandas()
        assert set(frame["split"]) <= {entry["split"]}
        assert {c: int((frame["label"] == c).sum()) for c in manifest["classes"]} == entry["class_counts"]
        assert (frame["label_index"] == frame["label"].map(manifest["classes"].index)).all()
        assert (frame["image"].map(len) == 48 * 48).all() and frame["dup_group"].notna().all()
        assert frame["label_source"].eq("dataset").all()
        seen.append(frame)
    shards = pd.concat(seen)
    for split, info in manifest["splits"].items():
        mine = shards[shards["split"] == split]
        assert len(mine) == info["rows"]
        assert {c: int((mine["label"] == c).sum()) for c in manifest["classes"]} == info["class_counts"]
    kept = groups[groups["kept"]]
    assert sorted(shards["sample_id"]) == sorted(kept["sample_id"])
    # The dataset's own split moved to split_dataset; gamma kept its official "test" labels there.
    gamma = shards[shards["source"] == "gamma"]
    assert set(gamma["split_dataset"]) == {"train", "test"}


def test_class_weights_are_inverse_frequency_per_split(built):
    manifest = json.loads((built / "manifest.json").read_text())
    metrics = json.loads((built / "metrics.json").read_text())
    for split, info in manifest["splits"].items():
        counts, weights = info["class_counts"], info["class_weights"]
        present = [c for c, n in counts.items() if n]
        for c, n in counts.items():
            expected = info["rows"] / (len(present) * n) if n else 0.0
            assert weights[c] == pytest.approx(expected, rel=1e-5)
        assert metrics["class_counts"][split] == counts and metrics["rows"][split] == info["rows"]
    train = pq.read_table(built / "shards/train/part-00000.parquet").to_pandas()
    expected = train["label"].map(manifest["splits"]["train"]["class_weights"]).astype("float32")
    assert np.allclose(train["sample_weight"], expected)


def test_same_inputs_give_byte_identical_shards_and_seeded_splits(world, built, tmp_path):
    _build(world, tmp_path / "again")
    first = json.loads((built / "manifest.json").read_text())
    second = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]
    assert (built / "groups.parquet").read_bytes() == (tmp_path / "again" / "groups.parquet").read_bytes()
    _build(world, tmp_path / "seed7", splits={"seed": 7})
    a = _groups(built).set_index("sample_id")["split"]
    b = _groups(tmp_path / "seed7").set_index("sample_id")["split"]
    assert (a != b).any()  # another seed, another placement (still leak-free: see above)


def test_official_split_straddle_is_dropped_or_moved_to_train(tmp_path):
    # One subject with rows in the dataset's train and test: a leak group across official splits.
    rows = [
        ct.row("off", f"o/{i}.png", ct.face(i), ct.labelled(i), subject="p1" if i < 4 else f"p{i}", split=split)
        for i, split in enumerate(["train", "train", "test", "test", "train", "test", "val", "test"])
    ]
    folder = ct.write_table(tmp_path / "off", "off", rows)
    base = {"identities": {"cluster": False}, "sources": {"off": {"split": "official"}}}
    build_corpus([table_from_dir(folder)], tmp_path / "drop", {"corpus": base})
    g = _groups(tmp_path / "drop").set_index("locator")
    assert list(g.loc[["o/0.png", "o/1.png"], "split"]) == ["train", "train"]
    assert list(g.loc[["o/2.png", "o/3.png"], "drop_reason"]) == ["leak_straddle"] * 2
    assert not g.loc["o/2.png", "kept"] and g.loc["o/7.png", "split"] == "test" and g.loc["o/6.png", "split"] == "val"
    leaks = json.loads((tmp_path / "drop" / "metrics.json").read_text())["leak_groups"]
    assert leaks["straddling_official_splits"] == 1 and leaks["rows_moved_from_official_split"] == 0
    moved = {**base, "splits": {"straddle": "move_to_train"}}
    build_corpus([table_from_dir(folder)], tmp_path / "move", {"corpus": moved})
    g = _groups(tmp_path / "move").set_index("locator")
    assert list(g.loc[[f"o/{i}.png" for i in range(4)], "split"]) == ["train"] * 4 and g["kept"].all()
    leaks = json.loads((tmp_path / "move" / "metrics.json").read_text())["leak_groups"]
    assert leaks["straddling_official_splits"] == 1 and leaks["rows_moved_from_official_split"] == 2


def test_excluded_source_and_label_conflicts(world, tmp_path):
    rows = [ct.row("dup", "d/0.png", ct.face(3), "surprise", embedding=ct.photo_vector(3, 3))]
    tables = {**world, "dup": ct.write_table(tmp_path / "dup", "dup", rows)}
    _build(tables, tmp_path / "keep", sources={"gamma": {"include": False}})
    g = _groups(tmp_path / "keep").set_index("sample_id")
    gamma = g[g["source"] == "gamma"]
    assert (gamma["drop_reason"] == "excluded_source").all() and gamma["split"].isna().all()
    conflict = g[g["label_conflict"]]
    # alpha's face 3 (fear), its copy in beta (fear) and the same face labelled surprise: one group, flagged.
    assert set(conflict["source"]) == {"alpha", "beta", "dup"} and conflict["dup_group"].nunique() == 1
    assert conflict["kept"].sum() == 1
    metrics = json.loads((tmp_path / "keep" / "metrics.json").read_text())
    assert metrics["duplicates"]["label_conflict_groups"] == 1
    _build(tables, tmp_path / "drop", duplicates={"label_conflicts": "drop"})
    g = _groups(tmp_path / "drop")
    assert not g.loc[g["label_conflict"], "kept"].any()
    assert set(g.loc[g["label_conflict"], "drop_reason"]) == {"duplicate", "label_conflict"}


def test_gate_failure_publishes_nothing(world, tmp_path):
    tables = [table_from_dir(p) for p in world.values()]
    with pytest.raises(CorpusGateFailed, match="width"):
        build_corpus(tables, tmp_path / "c", {"align": {"size": 64}})  # manifest says 64 px, shards hold 48
    assert not (tmp_path / "c" / "manifest.json").exists()
    assert not list((tmp_path / "c").iterdir())  # no staging left, nothing half-published


def test_tables_without_embeddings_need_recuration_unless_clustering_is_off(tmp_path):
    rows = [ct.row("old", f"x/{i}.png", ct.face(i), ct.labelled(i), subject=f"s{i % 3}") for i in range(9)]
    folder = ct.write_table(tmp_path / "old", "old", rows, with_embedding=False)
    with pytest.raises(CorpusInputError, match=r"old have no face embeddings: re-curate with `faces.embeddings: true`"):
        build_corpus([table_from_dir(folder)], tmp_path / "c", {})
    build_corpus([table_from_dir(folder)], tmp_path / "c", {"corpus": {"identities": {"cluster": False}}})
    g = _groups(tmp_path / "c")
    assert set(g["identity"]) == {"old:s0", "old:s1", "old:s2"}
    assert (g.groupby("identity")["split"].nunique() == 1).all()


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"splits": {"ratios": {"train": 0.8, "val": 0.3, "test": 0.1}}}, r"^corpus\.splits\.ratios: .*sum to 1"),
        ({"splits": {"seeds": 1}}, r"^corpus\.splits\.seeds: unknown key; known: ratios, seed, straddle"),
        ({"duplicates": {"keep": "largest"}}, r"^corpus\.duplicates\.keep: must be 'face_size'"),
        ({"sources": {"jaffe": {"weight": 0}}}, r"^corpus\.sources\.jaffe\.weight: must be greater than 0"),
        ({"report": {"thumb_px": 1}}, r"^corpus\.report\.thumb_px: must be greater"),
    ],
)
def test_corpus_params_are_checked_before_work(block, message):
    with pytest.raises(ValueError, match=message):
        resolve({"corpus": block})


def test_cli_builds_from_curated_folders_and_refuses_bad_params(world, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"corpus": {"shards": {"target_rows": 10, "row_group_rows": 4}}}))
    args = ["corpus", *[a for p in world.values() for a in ("--curated", str(p))], "--out", str(tmp_path / "c")]
    res = CliRunner().invoke(main, [*args, "--params", str(params)])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    train = [s for s in manifest["shards"] if s["split"] == "train"]
    assert len(train) > 1 and all(s["rows"] <= 10 for s in train) and train[0]["row_groups"] == 3
    assert (tmp_path / "c" / "report" / "index.html").exists()
    params.write_text(yaml.safe_dump({"corpus": {"shards": {"rows": 10}}}))
    res = CliRunner().invoke(main, [*args, "--params", str(params)])
    assert res.exit_code == 1 and "corpus.shards.rows: unknown key; known: target_rows" in res.output
    res = CliRunner().invoke(main, ["corpus", "--out", str(tmp_path / "d"), "--validated", str(tmp_path / "none.json")])
    assert res.exit_code == 1 and "run `fer-data manifest`" in res.output


def test_an_empty_split_still_has_its_shard(world, tmp_path):
    manifest = _build(world, tmp_path / "c", splits={"ratios": {"train": 1.0, "val": 0.0, "test": 0.0}})
    assert [(s["split"], s["rows"] > 0) for s in manifest["shards"]] == [
        ("train", True),
        ("val", False),
        ("test", False),
    ]
    empty = pq.read_table(tmp_path / "c" / "shards/val/part-00000.parquet")
    assert (
        empty.num_rows == 0
        and empty.schema.names == pq.read_schema(tmp_path / "c" / "shards/train/part-00000.parquet").names
    )
    assert manifest["splits"]["val"]["class_weights"] == {c: 0.0 for c in ct.CLASSES}
