"""Union-find over row indices: duplicate groups, identities and leak groups are its components."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


class UnionFind:
    """Disjoint sets of 0..n-1 with path halving and union by size (near-constant time an operation)."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return ra

    def union_pairs(self, pairs: Iterable[tuple[int, int]]) -> None:
        for a, b in pairs:
            self.union(int(a), int(b))

    def union_labels(self, labels: np.ndarray) -> None:
        """Join the rows that share a label (None/NaN labels join nothing)."""
        first: dict = {}
        for i, label in enumerate(labels):
            if label is None or (isinstance(label, float) and np.isnan(label)):
                continue
            j = first.setdefault(label, i)
            if j != i:
                self.union(j, i)

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def component_names(roots: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Name every component by its smallest id (deterministic, independent of union order)."""
    return pd.Series(ids, dtype=object).groupby(roots).transform("min").to_numpy(dtype=object)
