"""train.data: every manifest row once an epoch, the same order for 0/1/2 workers, exact resume, equal ranks."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from train_corpus import demo_corpus

from train.augment import affine, step_generator, to_input
from train.data import Corpus, CorpusError, ShardBatches, ShardStore, make_loader
from train.params import Augment


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return Corpus.open(demo_corpus(tmp_path_factory.mktemp("corpus")))


@pytest.fixture(scope="module")
def store(corpus, tmp_path_factory):
    return ShardStore.open(corpus, "train", tmp_path_factory.mktemp("cache"))


def _manifest_rows(corpus: Corpus, split: str) -> list[dict]:
    rows = []
    for shard in corpus.shards(split):
        table = pq.read_table(corpus.root / shard["path"], columns=["sample_id", "image", "label_index"])
        rows += [dict(r, shard=shard["path"]) for r in table.to_pylist()]
    return rows


def _epoch(store, workers: int, epoch: int = 0, start: int = 0, **kw) -> list[dict]:
    ds = ShardBatches(store, 16, shuffle=True, seed=3, **kw)
    ds.set_epoch(epoch, start)
    return list(make_loader(ds, workers))


def _order(batches: list[dict]) -> np.ndarray:
    return np.concatenate([b["index"].numpy() for b in batches]) if batches else np.zeros(0, np.int64)


def test_an_epoch_is_every_manifest_row_once_from_every_shard(corpus, store):
    rows = _manifest_rows(corpus, "train")
    assert len(corpus.shards("train")) >= 3 and len(rows) == corpus.rows("train") == len(store)
    batches = _epoch(store, workers=2)
    order = _order(batches)
    assert sorted(order.tolist()) == list(range(len(rows)))  # each row exactly once
    assert {rows[i]["shard"] for i in order} == {s["path"] for s in corpus.shards("train")}
    for b in batches:  # pixels and labels are the shard's, row by row
        for i, img, label in zip(b["index"].tolist(), b["image"], b["label"].tolist()):
            assert img.numpy().tobytes() == rows[i]["image"] and label == rows[i]["label_index"]
    assert [store.sample_ids[i] for i in order[:3]] == [rows[i]["sample_id"] for i in order[:3]]


def test_same_order_for_0_1_2_workers_and_new_order_each_epoch(store):
    orders = [_order(_epoch(store, workers=w)) for w in (0, 1, 2)]
    assert np.array_equal(orders[0], orders[1]) and np.array_equal(orders[0], orders[2])
    assert not np.array_equal(orders[0], _order(_epoch(store, workers=0, epoch=1)))
    assert not np.array_equal(orders[0], np.arange(len(store)))  # shuffled


def test_resumed_epoch_yields_exactly_the_rest(store):
    full = _order(_epoch(store, workers=0, epoch=2))
    done = 3  # batches seen before the interruption
    for workers in (0, 2):
        rest = _order(_epoch(store, workers=workers, epoch=2, start=done))
        assert np.array_equal(rest, full[done * 16 :])
    assert len(ShardBatches(store, 16, shuffle=True)) == int(np.ceil(len(store) / 16))


def test_two_ranks_get_equal_batch_counts_and_disjoint_samples(store):
    per_rank = [_epoch(store, workers=w, rank=r, world=2) for r, w in ((0, 0), (1, 2))]
    assert len(per_rank[0]) == len(per_rank[1])
    a, b = (set(_order(x).tolist()) for x in per_rank)
    assert not a & b
    assert len(a) == len(b) == len(store) // 2
    with_drop = [_epoch(store, workers=0, rank=r, world=3, drop_last=True) for r in range(3)]
    assert len({len(x) for x in with_drop}) == 1 and all(len(x[-1]["label"]) == 16 for x in with_drop)


def test_soft_targets_from_votes_drop_classes_outside_the_target_set(corpus, store):
    assert store.soft is not None
    assert np.allclose(store.soft.sum(1), 1)
    voted = store.soft.max(1) < 1  # votes 6 label, 2 next class, 2 contempt (outside fer2013_7: dropped)
    assert voted.any() and not voted.all()
    assert np.allclose(store.soft[voted].max(1), 0.75)
    assert np.allclose(store.soft[~voted].max(1), 1.0)
    assert np.array_equal(store.soft.argmax(1), store.labels)


def test_a_changed_shard_is_refused(corpus, tmp_path):
    manifest = json.loads((corpus.root / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "shards").symlink_to(corpus.root / "shards")
    with pytest.raises(CorpusError, match="sha256 differs"):
        ShardStore.open(Corpus.open(tmp_path), "train", tmp_path / "cache")


def test_augmentation_is_identity_at_zero_and_flips_exactly():
    torch.manual_seed(0)
    x = to_input(torch.randint(0, 256, (4, 48, 48), dtype=torch.uint8))
    gen = step_generator(torch.device("cpu"), 0, 0, 0)
    none = Augment(flip=False, rotate_deg=0.0, zoom=0.0, shift=0.0)
    assert torch.allclose(affine(x, none, gen), x, atol=1e-5)
    flipped = affine(x, Augment(flip=True, rotate_deg=0.0, zoom=0.0, shift=0.0), gen)
    for out, img in zip(flipped, x):
        assert torch.allclose(out, img, atol=1e-5) or torch.allclose(out, img.flip(2), atol=1e-5)
    a = affine(x, Augment(), step_generator(torch.device("cpu"), 1, 2, 3))
    b = affine(x, Augment(), step_generator(torch.device("cpu"), 1, 2, 3))
    assert torch.equal(a, b) and not torch.allclose(a, x)
