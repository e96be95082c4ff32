"""Confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in
Dataset Labels", JAIR 2021), from the paper, in numpy: which rows' given labels are likely wrong.

From out-of-fold probabilities P (rows x K) and given labels y:
1. per-class thresholds t_j = mean P[i, j] over the rows labelled j (the class's self-confidence);
2. the confident joint C[y, j]: a row counts for the class j that is above its threshold with the
   highest probability (no class above threshold: the row is not counted);
3. calibrated so each row of C sums to the number of rows with that given label, then Q = C / N
   estimates the joint distribution of (given, true) labels;
4. pruning: `prune_by_noise_rate` removes, from each given class i and each j != i, the
   round(N * Q[i, j]) rows with the largest margin P[j] - P[i]; `confident_learning` flags the
   rows counted off the diagonal of C; `both` flags rows both rules flag;
5. ranking by self-confidence P[i, y_i] or the normalised margin P[i, y_i] - max_{k != y_i} P[i, k].

Everything is (rows x K) or (K x K): memory and time grow linearly with rows, never rows x rows
(cleanlab's users ran out of memory at 200k rows x 5k classes from dense intermediates; here the
largest array is P itself). cleanlab implements the same method under the AGPL: not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FILTERS = ("prune_by_noise_rate", "confident_learning", "both")
RANKS = ("self_confidence", "normalized_margin")


@dataclass(frozen=True)
class Issues:
    """Per row: flagged as a label issue, its quality (lower: more likely wrong) and rank (1: worst)."""

    flagged: np.ndarray  # bool (N,)
    quality: np.ndarray  # float (N,) in [0, 1]
    rank: np.ndarray  # int (N,), 1-based, by quality ascending
    thresholds: np.ndarray  # (K,)
    joint: np.ndarray  # (K, K) calibrated joint Q of (given, true) labels


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs must be (rows, classes) with one row per label, got {probs.shape} and {len(labels)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels outside 0..{probs.shape[1] - 1}")
    return probs, labels


def thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """t_j: mean predicted probability of class j over the rows labelled j (a class nobody has: 1)."""
    k = probs.shape[1]
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros(k)
    np.add.at(sums, labels, probs[np.arange(len(labels)), labels])
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)


def confident_classes(probs: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per row, the class above its threshold with the highest probability; -1 where none is."""
    above = probs >= t[None, :] - 1e-12
    masked = np.where(above, probs, -np.inf)
    best = masked.argmax(1)
    return np.where(above.any(1), best, -1)


def confident_joint(probs: np.ndarray, labels: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C (K x K) counts of (given, confident) class pairs, each row's confident class or -1)."""
    k = probs.shape[1]
    true = confident_classes(probs, t)
    counted = true >= 0
    joint = np.bincount(labels[counted] * k + true[counted], minlength=k * k).reshape(k, k)
    return joint, true


def calibrate(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Q: C's rows scaled to the given-label counts, divided by N (a joint distribution summing to 1)."""
    k = joint.shape[0]
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    row = joint.sum(1, keepdims=True).astype(np.float64)
    scaled = np.where(row > 0, joint / np.maximum(row, 1) * counts[:, None], 0.0)
    return scaled / max(len(labels), 1)


def quality(probs: np.ndarray, labels: np.ndarray, rank_by: str) -> np.ndarray:
    """Label quality in [0, 1], lower = more likely wrong: self-confidence or the normalised margin."""
    given = probs[np.arange(len(labels)), labels]
    if rank_by == "self_confidence":
        return given
    others = probs.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return (given - others.max(1) + 1) / 2  # margin in [-1, 1] mapped to [0, 1]


def prune_by_noise_rate(probs: np.ndarray, labels: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Flag, per off-diagonal (given i, true j), the round(N Q[i, j]) rows of class i with the largest P[j] - P[i]."""
    n, k = probs.shape
    flagged = np.zeros(n, bool)
    remove = np.rint(q * n).astype(np.int64)
    np.fill_diagonal(remove, 0)
    for i in range(k):
        rows = np.flatnonzero(labels == i)
        if not len(rows) or not remove[i].any():
            continue
        # Never remove a whole class: keep at least one row (the paper prunes at most n_i - 1).
        budget = min(int(remove[i].sum()), len(rows) - 1)
        margin = probs[rows] - probs[rows, i][:, None]  # (n_i, K): how much more each class is believed
        taken = np.zeros(len(rows), bool)
        for j in np.argsort(-remove[i]):
            want = min(int(remove[i, j]), budget)
            if want <= 0:
                continue
            order = np.argsort(-np.where(taken, -np.inf, margin[:, j]), kind="stable")[:want]
            taken[order] = True
            budget -= want
        flagged[rows[taken]] = True
    return flagged


def find_issues(
    probs: np.ndarray, labels: np.ndarray, filter_by: str = "prune_by_noise_rate", rank_by: str = "self_confidence"
) -> Issues:
    """Label issues of every row (see the module docstring); ranks cover every row, flagged or not."""
    if filter_by not in FILTERS or rank_by not in RANKS:
        raise ValueError(f"filter_by must be one of {FILTERS}, rank_by one of {RANKS}")
    probs, labels = _check(probs, labels)
    t = thresholds(probs, labels)
    joint, true = confident_joint(probs, labels, t)
    q = calibrate(joint, labels)
    off_diagonal = (true >= 0) & (true != labels)
    by_rate = prune_by_noise_rate(probs, labels, q)
    flagged = {"prune_by_noise_rate": by_rate, "confident_learning": off_diagonal, "both": by_rate & off_diagonal}
    qual = quality(probs, labels, rank_by)
    order = np.lexsort((np.arange(len(qual)), qual))
    rank = np.empty(len(qual), np.int64)
    rank[order] = np.arange(1, len(qual) + 1)
    return Issues(flagged=flagged[filter_by], quality=qual, rank=rank, thresholds=t, joint=q)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Normalised entropy of each row's distribution, in [0, 1] (1: uniform over all K classes)."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1)
    return -(p * np.log(p)).sum(1) / np.log(p.shape[1])


def votes_top_share(votes: list) -> np.ndarray:
    """Share of the most-voted class per row of crowd votes (FER+), NaN where a row has none."""
    out = np.full(len(votes), np.nan)
    for i, v in enumerate(votes):
        if v is not None and np.nansum(v) > 0:
            v = np.asarray(v, np.float64)
            out[i] = np.nanmax(v) / np.nansum(v)
    return out
