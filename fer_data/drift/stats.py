"""Two-sample statistics of the drift battery.

KS and chi-square come from scipy; PSI has no library implementation (it is a one-line sum);
the kernel MMD is here because no installed library computes it with a permutation p-value
in bounded memory. Holm's step-down correction keeps the whole battery's false-alarm rate at
`alpha` whatever the dependence between its tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: PSI's log ratio is undefined for an empty bin; a bin share is floored at this (a common choice).
PSI_EPSILON = 1e-4
#: Points used to pick the MMD kernel width (median pairwise distance): enough for a stable median.
BANDWIDTH_POINTS = 1000


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (ties merged), so each bin holds ~1/bins of it."""
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def bin_shares(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Share of values per bin, the outer bins open-ended; a value on an edge goes to the upper bin."""
    counts = np.bincount(np.searchsorted(inner_edges, values, side="right"), minlength=len(inner_edges) + 1)
    return counts / max(len(values), 1)


def psi(reference: np.ndarray, batch: np.ndarray) -> float:
    """Population stability index between two vectors of bin shares (0 = same; 0.1 a moderate, 0.25 a large shift)."""
    ref = np.maximum(np.asarray(reference, float), PSI_EPSILON)
    cur = np.maximum(np.asarray(batch, float), PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks(reference: np.ndarray, batch: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy)."""
    res = stats.ks_2samp(batch, reference)
    return float(res.statistic), float(res.pvalue)


def chi2_counts(reference: Sequence[float], batch: Sequence[float]) -> tuple[float, float]:
    """Chi-square test of homogeneity of two class-count vectors (classes absent from both dropped)."""
    table = np.array([reference, batch], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    res = stats.chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (reject where adjusted < alpha): family-wise error <= alpha, any dependence."""
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def bonferroni(p_values: Sequence[float]) -> list[float]:
    return np.minimum(np.asarray(p_values, float) * len(p_values), 1.0).tolist()


@dataclass(frozen=True)
class MMDResult:
    mmd2: float  # biased (V-statistic) squared MMD of the observed split
    p_value: float  # (1 + permutations at least as large) / (1 + permutations)
    bandwidth: float  # Gaussian kernel width sigma: k(x, y) = exp(-|x - y|^2 / (2 sigma^2))
    permutations: int


def mmd_permutation_test(
    x: np.ndarray, y: np.ndarray, permutations: int = 100, chunk_rows: int = 4096, seed: int = 0
) -> MMDResult:
    """Gaussian-kernel MMD between samples X and Y with a permutation p-value, in bounded memory.

    Each permutation's statistic is a quadratic form a^T K a over the pooled kernel matrix K
    (a = +1/n on one group, -1/m on the other). The observed split and every permutation are
    the columns of one weight matrix A, so one pass over K in chunk x chunk blocks (upper
    triangle only: K is symmetric) gives all of them: memory is a block of K plus A, never K.
    """
    import torch

    z = torch.from_numpy(np.concatenate([x, y]).astype(np.float32, copy=False))
    n, total = len(x), len(x) + len(y)
    gen = torch.Generator().manual_seed(seed)
    weights = _split_weights(n, total, permutations, gen)
    sigma = _median_bandwidth(z, gen)
    gamma = 1.0 / (2.0 * sigma * sigma)
    sq = (z * z).sum(dim=1)
    q = torch.zeros(permutations + 1, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, total, chunk_rows):
            zi, wi = z[i : i + chunk_rows], weights[i : i + chunk_rows]
            for j in range(i, total, chunk_rows):
                d2 = (sq[i : i + chunk_rows, None] + sq[None, j : j + chunk_rows]).addmm_(
                    zi, z[j : j + chunk_rows].T, alpha=-2.0
                )
                k = d2.clamp_min_(0.0).mul_(-gamma).exp_()
                part = (wi * (k @ weights[j : j + chunk_rows])).sum(dim=0).double()
                q += part if i == j else 2.0 * part
    observed = float(q[0])
    exceed = int((q[1:] >= q[0] - 1e-12 * abs(observed)).sum())
    return MMDResult(observed, (1 + exceed) / (1 + permutations), float(sigma), permutations)


def mmd_random_features_test(
    x: np.ndarray, y: np.ndarray, permutations: int = 100, features: int = 2048, chunk_rows: int = 4096, seed: int = 0
) -> MMDResult:
    """The same test with random Fourier features of the Gaussian kernel: linear, not quadratic, in the rows.

    phi(z) = sqrt(2/D) cos(z W + b) with W ~ N(0, 1/sigma^2), b ~ U(0, 2 pi) (Rahimi and Recht) makes
    phi(x).phi(y) an unbiased estimate of the kernel, so MMD^2 = |Phi^T a|^2 for the same weight
    vectors a. Phi^T A is accumulated chunk by chunk (memory: a chunk of Phi plus D x permutations).
    The statistic is the exact MMD of a random kernel close to the Gaussian one, and its permutation
    p-value is exact for it: the false-alarm rate holds; only power can differ a little.
    """
    import torch

    z = torch.from_numpy(np.concatenate([x, y]).astype(np.float32, copy=False))
    n, total = len(x), len(x) + len(y)
    gen = torch.Generator().manual_seed(seed)
    weights = _split_weights(n, total, permutations, gen)
    sigma = _median_bandwidth(z, gen)
    proj = torch.randn(z.shape[1], features, generator=gen) / sigma
    phase = torch.rand(features, generator=gen) * (2 * np.pi)
    acc = torch.zeros(features, permutations + 1, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, total, chunk_rows):
            phi = torch.cos(z[i : i + chunk_rows] @ proj + phase) * np.sqrt(2.0 / features)
            acc += (phi.T @ weights[i : i + chunk_rows]).double()
    q = (acc * acc).sum(dim=0)
    observed = float(q[0])
    exceed = int((q[1:] >= q[0] - 1e-12 * abs(observed)).sum())
    return MMDResult(observed, (1 + exceed) / (1 + permutations), float(sigma), permutations)


def _split_weights(n: int, total: int, permutations: int, gen) -> torch.Tensor:  # noqa: F821
    """(total, 1 + permutations) float32: column 0 the observed split, then random relabellings."""
    import torch

    member = torch.zeros(total, permutations + 1, dtype=torch.bool)
    member[:n, 0] = True
    for p in range(1, permutations + 1):
        member[torch.randperm(total, generator=gen)[:n], p] = True
    return torch.where(member, torch.tensor(1.0 / n), torch.tensor(-1.0 / (total - n)))


def _median_bandwidth(z, gen) -> float:
    """Median pairwise distance of a random subset of the pooled points (the usual heuristic)."""
    import torch

    pick = torch.randperm(len(z), generator=gen)[:BANDWIDTH_POINTS]
    d = torch.cdist(z[pick], z[pick])
    off_diagonal = d[~torch.eye(len(pick), dtype=torch.bool)]
    median = float(off_diagonal.median()) if len(off_diagonal) else 1.0
    return median if median > 0 else 1.0
