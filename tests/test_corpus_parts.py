"""The corpus's parts on small hand-made inputs: union-find, identities, splits, duplicate checks."""

from __future__ import annotations

import corpus_tables as ct
import cv2
import numpy as np
import pytest

from fer_data.corpus import dups, features, identity, splits
from fer_data.corpus.groups import UnionFind, component_names
from fer_data.corpus.params import DuplicateParams, IdentityParams


def test_union_find_components_are_named_by_their_smallest_id():
    uf = UnionFind(6)
    uf.union_pairs([(0, 3), (3, 5)])
    uf.union_labels(np.array(["x", None, "y", None, "y", None], dtype=object))  # 2 and 4 share a label
    names = component_names(uf.roots(), np.array(["f", "e", "d", "c", "b", "a"], dtype=object))
    assert list(names) == ["a", "e", "b", "a", "b", "a"]


def _people(n_people: int, photos: int) -> np.ndarray:
    return np.array([ct.photo_vector(p, k) for p in range(n_people) for k in range(photos)])


def test_average_linkage_finds_people_and_respects_subject_ids():
    emb = _people(6, 4)
    none = np.full(len(emb), None, dtype=object)
    roots = identity.cluster(emb, none, ["s"] * len(emb), IdentityParams())
    truth = np.repeat(np.arange(6), 4)
    assert all(len(set(roots[truth == p])) == 1 for p in range(6))  # each person one cluster
    assert len(set(roots)) == 6  # and no two people merged
    # Two known subjects of one dataset never merge, however close; a third source's rows may join either.
    subjects = np.array([f"d:{'a' if k < 2 else 'b'}" if p == 0 else None for p in range(6) for k in range(4)])
    roots = identity.cluster(emb, subjects, ["d"] * len(emb), IdentityParams(max_distance=5.0))
    assert roots[0] != roots[2]


def test_rows_without_embeddings_keep_their_subject_and_duplicate_links():
    emb = _people(2, 2)
    emb[1] = np.nan
    subjects = np.array(["d:x", "d:x", None, None], dtype=object)
    same = np.array([0, 1, 2, 2])  # rows 2 and 3 are copies
    roots = identity.cluster(emb, subjects, ["d"] * 4, IdentityParams(), same=same)
    assert roots[0] == roots[1] and roots[2] == roots[3] and roots[0] != roots[2]
    names = identity.identity_names(roots, subjects, np.array(list("abcd"), dtype=object))
    assert list(names) == ["d:x", "d:x", "cluster-000000", "cluster-000000"]
    assert identity.identity_names(roots, subjects, np.array(list("abcd"), dtype=object), anonymous=False)[2] is None


def test_splits_are_stratified_when_groups_allow():
    rng = np.random.default_rng(0)
    labels = np.array(list("aaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbccc") * 10, dtype=object)
    leak = np.array([f"g{i // 2}" for i in range(len(labels))], dtype=object)  # pairs of rows
    rng.shuffle(leak)
    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    fixed = [None] * len(labels)
    split, dropped = splits.assign(leak, labels, fixed, np.ones(len(labels), bool), "abc", ratios, 0, "drop_eval")
    assert not dropped.any()
    for cls in "abc":
        share = np.mean(split[labels == cls] == "train")
        assert share == pytest.approx(0.8, abs=0.05), cls
    for g in set(leak):
        assert len(set(split[leak == g])) == 1


def test_registration_forgives_copies_and_not_other_faces():
    a = ct.face(10)
    small = features.SMALL
    copy = cv2.resize(ct.copy_of(a), (small, small))[:, ::-1]  # copy_of mirrors: undo it, as confirm does
    original = cv2.resize(a, (small, small))
    other = cv2.resize(ct.face(11), (small, small))
    assert dups.registered_similarity(original, np.ascontiguousarray(copy)) >= 0.9
    assert dups.registered_similarity(original, other) < 0.9


def test_hnsw_index_beyond_the_exact_search_finds_the_same_neighbours(monkeypatch):
    from fer_data.corpus import knn

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 32)).astype(np.float32)
    exact = knn.neighbours(knn.build_index(vectors, inner_product=False), vectors, 5)[1]
    monkeypatch.setattr(knn, "FLAT_MAX_ROWS", 100)
    index = knn.build_index(vectors, inner_product=False)
    assert "HNSW" in type(index).__name__
    approx = knn.neighbours(index, vectors, 5)[1]
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(exact, approx)]) >= 0.99


def test_a_mirrored_copy_is_compared_mirrored_whichever_search_found_it():
    faces = [ct.face(i) for i in range(12)]
    faces.append(ct.copy_of(faces[3]))  # row 12: a mirrored, re-encoded copy of row 3
    feats = _features_of(faces)
    # A threshold every pair passes: the plain search lists (3, 12) as well, unmirrored.
    p = DuplicateParams(candidate_correlation=0.01, neighbours=len(faces))
    pairs, flips = dups.candidate_pairs(feats, p)
    at = [k for k, (i, j) in enumerate(pairs) if (i, j) == (3, 12)]
    assert len(at) == 1 and flips[at[0]]
    labels = np.array(["x"] * len(faces), dtype=object)
    assert [tuple(x) for x in dups.confirm(pairs, flips, feats, None, labels, p)] == [(3, 12)]


def _features_of(faces: list[np.ndarray]) -> features.Features:
    return features.Features(
        sha=np.array([str(i) for i in range(len(faces))], dtype=object),
        hashes=np.array([(features.phash64(f), features.phash64(f[:, ::-1].copy())) for f in faces], np.uint64),
        small=np.array([cv2.resize(f, (features.SMALL, features.SMALL), interpolation=cv2.INTER_AREA) for f in faces]),
    )


@pytest.mark.parametrize("degrees, dx, dy, scale", [(6, 2, 1, 1.05), (8, 2, 2, 1.08), (10, 1, 2, 1.0)])
def test_a_copy_aligned_a_few_pixels_and_degrees_off_is_found_and_other_faces_are_not(degrees, dx, dy, scale):
    """What the curation does to a 48 px copy: its own landmark fit puts it a little off its original.

    Its thumbnail correlates ~0.7-0.8 with the original's and its hash is ~20 bits away, under the
    old candidate thresholds (0.85, 16 bits): the defaults pass it to the registration, which decides.
    """
    faces = [ct.face(i) for i in range(30)]
    m = cv2.getRotationMatrix2D((24, 24), degrees, scale)
    m[:, 2] += (dx, dy)
    faces.append(cv2.warpAffine(faces[3], m, (48, 48), borderMode=cv2.BORDER_REPLICATE))  # row 30
    feats = _features_of(faces)
    labels = np.array(["x"] * len(faces), dtype=object)
    assert [tuple(p) for p in dups.near_pairs(feats, None, labels, DuplicateParams())] == [(3, 30)]
    old = DuplicateParams(candidate_correlation=0.85, max_hash_distance=16, neighbours=8)
    assert not len(dups.near_pairs(feats, None, labels, old))
