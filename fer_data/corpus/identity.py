"""Probable identities: average-linkage clustering of face embeddings over a kNN graph.

Known subject ids are must-links (a subject starts as one cluster) and, within one source,
cannot-links (two subjects of the same dataset are two people); so are duplicate groups (a copy
of a face shows the same person, however noisy the descriptor of a 48 px crop of it). Single linkage (connected
components of "closer than t" edges) chains different people through look-alike neighbours;
average linkage merges two clusters only when their faces are close on average, so one
look-alike pair does not join two people. Candidate merges come from a faiss kNN graph, so the
work grows with rows x k, not rows². Clusters keep only counts and sums (O(d) a merge): the
root mean squared distance between clusters A and B is
    sqrt(mean|a|² + mean|b|² - 2 mean(a)·mean(b)).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fer_data.corpus.groups import UnionFind
from fer_data.corpus.knn import build_index, neighbours, pairs_within
from fer_data.corpus.params import IdentityParams


def subject_keys(sources: Sequence[str], subjects: Sequence[object]) -> np.ndarray:
    """ "source:subject" where the dataset names the person, else None."""
    return np.array(
        [f"{src}:{sub}" if isinstance(sub, str) and sub else None for src, sub in zip(sources, subjects)], dtype=object
    )


class _Clusters:
    """Running sums of the clusters of an average-linkage merge."""

    def __init__(self, emb: np.ndarray, start: np.ndarray, subjects: np.ndarray, sources: Sequence[str]):
        self.count: dict[int, int] = {}
        self.total: dict[int, np.ndarray] = {}
        self.sq: dict[int, float] = {}
        self.known: dict[int, dict[str, str]] = {}  # source -> subject key (cannot-links)
        for i in range(len(emb)):
            c = int(start[i])
            if np.isfinite(emb[i, 0]):
                self.count[c] = self.count.get(c, 0) + 1
                self.total[c] = self.total.get(c, 0) + emb[i].astype(np.float64)
                self.sq[c] = self.sq.get(c, 0.0) + float(emb[i] @ emb[i])
            if subjects[i] is not None:
                self.known.setdefault(c, {})[sources[i]] = subjects[i]

    def distance(self, a: int, b: int) -> float:
        na, nb = self.count[a], self.count[b]
        d2 = self.sq[a] / na + self.sq[b] / nb - 2 * float(self.total[a] @ self.total[b]) / (na * nb)
        return float(np.sqrt(max(d2, 0.0)))

    def cannot_link(self, a: int, b: int) -> bool:
        ka, kb = self.known.get(a, {}), self.known.get(b, {})
        return any(src in kb and kb[src] != sub for src, sub in ka.items())

    def merge(self, a: int, b: int, into: int) -> None:
        for c in (a, b):
            if c == into:
                continue
            self.count[into] += self.count.pop(c)
            self.total[into] = self.total[into] + self.total.pop(c)
            self.sq[into] += self.sq.pop(c)
            known = self.known.pop(c, {})
            self.known.setdefault(into, {}).update(known)


def cluster(
    emb: np.ndarray,
    subjects: np.ndarray,
    sources: Sequence[str],
    p: IdentityParams,
    same: np.ndarray | None = None,
) -> np.ndarray:
    """Union-find roots of identities: must-links (one subject id; SAME, e.g. the duplicate-group roots: a
    copy shows the same person), then average-linkage merges up to p.max_distance."""
    n = len(subjects)
    uf = UnionFind(n)
    uf.union_labels(subjects)
    if same is not None:
        uf.union_pairs(zip(range(n), same))
    valid = np.flatnonzero(np.isfinite(emb[:, 0])) if len(emb) else np.zeros(0, np.int64)
    if len(valid) < 2:
        return uf.roots()
    index = build_index(emb[valid], inner_product=False)
    d2, ids = neighbours(index, emb[valid], p.neighbours + 1)
    local = pairs_within(ids, d2 <= p.max_distance**2)
    edges = valid[local] if len(local) else local
    start = uf.roots()
    state = _Clusters(emb, start, subjects, sources)
    adjacency: dict[int, set[int]] = {}
    for a, b in edges:
        ca, cb = int(start[a]), int(start[b])
        if ca != cb and ca in state.count and cb in state.count:
            adjacency.setdefault(ca, set()).add(cb)
            adjacency.setdefault(cb, set()).add(ca)
    heap = [(state.distance(a, b), a, b) for a in adjacency for b in adjacency[a] if a < b]
    heapq.heapify(heap)
    while heap:
        dist, a, b = heapq.heappop(heap)
        if dist > p.max_distance:
            break
        if a not in state.count or b not in state.count or state.cannot_link(a, b):
            continue  # merged away since it was pushed, or two known people of one dataset
        into = uf.union(a, b)
        state.merge(a, b, into)
        linked = (adjacency.pop(a, set()) | adjacency.pop(b, set())) - {a, b}
        adjacency[into] = linked
        for c in linked:
            adjacency[c] -= {a, b}
            adjacency[c].add(into)
            heapq.heappush(heap, (state.distance(min(into, c), max(into, c)), min(into, c), max(into, c)))
    return uf.roots()


def identity_names(
    roots: np.ndarray, subjects: np.ndarray, sample_ids: np.ndarray, anonymous: bool = True
) -> np.ndarray:
    """A name per row: the cluster's most frequent known subject, else cluster-NNNNNN (size >= 2, when
    ANONYMOUS clusters are named: not when identities come from subject ids only), else None."""
    frame = pd.DataFrame({"root": roots, "subject": subjects, "id": sample_ids})
    sizes = frame.groupby("root")["id"].transform("size")
    known = frame.dropna(subset=["subject"]).groupby(["root", "subject"]).size().reset_index(name="n")
    known = known.sort_values(["root", "n", "subject"], ascending=[True, False, True]).drop_duplicates("root")
    by_root = dict(zip(known["root"], known["subject"]))
    unnamed = frame[(sizes >= 2) & ~frame["root"].isin(by_root)].groupby("root")["id"].min().sort_values()
    if anonymous:
        by_root.update({root: f"cluster-{k:06d}" for k, root in enumerate(unnamed.index)})
    return np.array([by_root.get(r) for r in roots], dtype=object)
