"""Nearest-neighbour search with faiss: exact below FLAT_MAX_ROWS, HNSW graphs above.

Memory grows with rows x dimensions (the vectors and, above FLAT_MAX_ROWS, a graph of
HNSW_M links a row), never with rows²; queries run in chunks so the (chunk, k) result arrays
stay small.
"""

from __future__ import annotations

import faiss
import numpy as np

#: Up to this many rows the exact (brute-force, BLAS) index is fast enough here; beyond, HNSW.
FLAT_MAX_ROWS = 50_000
#: HNSW links per node and search breadth: faiss's usual recall/speed trade-off (recall > 0.99 at 64).
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80
QUERY_CHUNK = 8192


def build_index(vectors: np.ndarray, inner_product: bool) -> faiss.Index:
    d = vectors.shape[1]
    metric = faiss.METRIC_INNER_PRODUCT if inner_product else faiss.METRIC_L2
    if len(vectors) <= FLAT_MAX_ROWS:
        index = faiss.IndexFlatIP(d) if inner_product else faiss.IndexFlatL2(d)
    else:
        index = faiss.IndexHNSWFlat(d, HNSW_M, metric)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def neighbours(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k nearest rows of INDEX for each query (ids -1 where fewer exist)."""
    k = max(1, min(k, index.ntotal))
    scores, ids = [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        s, i = index.search(np.ascontiguousarray(queries[start : start + QUERY_CHUNK], dtype=np.float32), k)
        scores.append(s)
        ids.append(i)
    if not scores:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate(scores), np.concatenate(ids)


def pairs_within(ids: np.ndarray, keep: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Unique (i, j) pairs, i < j, from a neighbour table where KEEP is true (self-matches dropped)."""
    q = np.repeat(np.arange(len(ids)) if rows is None else rows, ids.shape[1]).reshape(ids.shape)
    mask = keep & (ids >= 0) & (ids != q)
    a, b = q[mask], ids[mask]
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)
