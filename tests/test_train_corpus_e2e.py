"""End to end: `fer-data corpus` output (the real corpus builder, on curated tables of real faces) trains.

The corpus is built by fer_data.corpus from curated-schema tables (tests/corpus_tables.py, no face
detection), then `python -m train fit` and `evaluate` run on it: every shard row is read once an
epoch, the soft-label / weight columns the corpus writes are accepted, and the scores cover exactly
the corpus's val and test rows, per source.
"""

from __future__ import annotations

import json

import corpus_tables as ct
import numpy as np
import pyarrow.parquet as pq
import pytest

from fer_data.corpus import build_corpus, table_from_dir
from train import __main__ as cli
from train.data import Corpus, ShardBatches, ShardStore, make_loader


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    rows = {
        "alpha": [ct.row("alpha", f"a/{i:03d}.png", ct.face(i), ct.labelled(i), embedding=ct.photo_vector(i, 0))
                  for i in range(70)],
        "gamma": [ct.row("gamma", f"g/s{i % 6}_{i:03d}.png", ct.face(100 - i), ct.labelled(i), subject=f"s{i % 6}",
                         embedding=ct.photo_vector(300 + i % 6, i)) for i in range(30)],
    }  # fmt: skip
    tables = [table_from_dir(ct.write_table(root / name, name, r)) for name, r in rows.items()]
    build_corpus(tables, root / "corpus", {"corpus": {}})
    return root / "corpus"


def test_loader_reads_every_row_of_the_corpus_shards_once(corpus, tmp_path):
    c = Corpus.open(corpus)
    for split in ("train", "val", "test"):
        store = ShardStore.open(c, split, tmp_path)
        ds = ShardBatches(store, 8, shuffle=True, seed=1)
        seen = np.concatenate([b["index"].numpy() for b in make_loader(ds, 2)])
        assert sorted(seen.tolist()) == list(range(c.rows(split))) == list(range(c.manifest["splits"][split]["rows"]))
        ids = [
            r
            for s in c.shards(split)
            for r in pq.read_table(corpus / s["path"], columns=["sample_id"]).column(0).to_pylist()
        ]
        assert list(store.sample_ids) == ids


def test_fit_and_evaluate_on_the_corpus_output(corpus, tmp_path, capsys):
    (tmp_path / "params.yaml").write_text(
        f"train: {{model: baseline, epochs: 2, batch_size: 16, lr: 0.01, cache_dir: '{tmp_path / 'cache'}'}}\n"
    )
    out = tmp_path / "train"
    assert cli.main(["fit", "--corpus", str(corpus), "--out", str(out), "--params", str(tmp_path / "params.yaml")]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    manifest = json.loads((corpus / "manifest.json").read_text())
    for split in ("val", "test"):
        assert metrics[split]["rows"] == manifest["splits"][split]["rows"] > 0
        sources = {s for sh in manifest["shards"] if sh["split"] == split
                   for s in pq.read_table(corpus / sh["path"], columns=["source"]).column(0).to_pylist()}  # fmt: skip
        assert set(metrics[split]["by_source"]) == sources
    capsys.readouterr()
    assert cli.main(["evaluate", "--model", str(out / "model.pt"), "--corpus", str(corpus), "--split", "test",
                     "--cache-dir", str(tmp_path / "cache")]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["accuracy"] == metrics["test"]["accuracy"]
