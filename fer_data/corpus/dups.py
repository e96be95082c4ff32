"""Exact and near duplicates: which rows show the same face image, and which row of each group stays.

Exact: the same aligned-face bytes, or the same raw input (raw_sha256). Near: aligned faces put
the eyes in the same place, so to a coarse comparison every face looks alike, and a perceptual
hash alone takes different people of similar pose for copies. So a pair is a near duplicate
only when every signal agrees, cheapest first (thresholds measured on real faces, BENCHMARKS.md
"Corpus"):

1. candidates: faiss nearest neighbours of each face's 16 px thumbnail, and of its mirror
   image's, with correlation >= candidate_correlation; each pair is then compared the way it
   correlates best (as it is, or mirrored);
2. perceptual hash (imagehash's DCT hash) of the face or its mirror within max_hash_distance;
3. face-embedding distance <= max_embedding_distance where both rows have one (a copy is the
   same person; different people of similar pose are > 0.36 apart on JAFFE/CK+);
4. registration: the second face (or its mirror) warped onto the first by OpenCV's ECC
   (affine), then the LOWEST correlation over a 3 x 3 grid of blocks >= min_registered_correlation
   (min_registered_correlation_labels_differ for a pair whose labels differ: a label conflict is
   raised for copies beyond doubt, not for a neutral frame and a subtle expression of one person).
   Registration forgives what copies go through (rescaling, crops a few pixels off, small
   rotations, re-alignment jitter); the worst block catches what a global score averages away:
   a different mouth or eyes (another expression, another person).
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from fer_data.corpus.features import SMALL, Features, hamming
from fer_data.corpus.groups import UnionFind
from fer_data.corpus.knn import build_index, neighbours, pairs_within
from fer_data.corpus.params import DuplicateParams

#: Block grid and border (pixels of the SMALL face) for the registered comparison; the border
#: is left out because warping leaves it partly empty.
GRID = 3
MARGIN = 3
#: ECC iterations and convergence (a few dozen iterations converge on 32 px faces).
ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
ECC_BLUR = 3
#: Candidate pairs whose thumbnails are compared at once: 3 x 64 MiB of float32 thumbnails, whatever
#: the number of pairs (a million pairs of 256-d thumbnails would be 2 GiB at once).
PAIR_CHUNK = 65536


def candidate_pairs(feats: Features, p: DuplicateParams) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) whose thumbnails correlate >= candidate_correlation, and whether J is compared mirrored.

    Each pair is compared the way its thumbnails correlate best (as they are, or one mirrored),
    whichever search found it: a mirrored copy found by the plain search among the neighbours
    would otherwise be registered unmirrored and missed.
    """
    if len(feats.small) < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, bool)
    thumbs, mirrors = feats.thumbs(), feats.thumbs(mirrored=True)
    index = build_index(thumbs, inner_product=True)
    found = []
    for queries in (thumbs, mirrors):
        scores, ids = neighbours(index, queries, p.neighbours + 1)
        found.append(pairs_within(ids, scores >= p.candidate_correlation))
    pairs = np.unique(np.concatenate(found), axis=0)
    if not len(pairs):
        return pairs, np.zeros(0, bool)
    flips = np.empty(len(pairs), bool)
    for start in range(0, len(pairs), PAIR_CHUNK):
        i, j = pairs[start : start + PAIR_CHUNK, 0], pairs[start : start + PAIR_CHUNK, 1]
        plain = np.einsum("nd,nd->n", thumbs[i], thumbs[j])
        flips[start : start + PAIR_CHUNK] = np.einsum("nd,nd->n", thumbs[i], mirrors[j]) > plain
    return pairs, flips


def block_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Lowest Pearson correlation over the GRID x GRID blocks of two SMALL faces (border left out)."""
    inner = SMALL - 2 * MARGIN
    step = inner // GRID
    x = a[MARGIN : MARGIN + step * GRID, MARGIN : MARGIN + step * GRID].astype(np.float32)
    y = b[MARGIN : MARGIN + step * GRID, MARGIN : MARGIN + step * GRID].astype(np.float32)
    bx = x.reshape(GRID, step, GRID, step).transpose(0, 2, 1, 3).reshape(GRID * GRID, -1)
    by = y.reshape(GRID, step, GRID, step).transpose(0, 2, 1, 3).reshape(GRID * GRID, -1)
    bx = bx - bx.mean(axis=1, keepdims=True)
    by = by - by.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(bx, axis=1) * np.linalg.norm(by, axis=1)
    corr = np.where(norms > 0, (bx * by).sum(axis=1) / np.maximum(norms, 1e-9), 0.0)
    return float(corr.min())


def registered_similarity(a: np.ndarray, b: np.ndarray, enough: float = 1.0) -> float:
    """block_similarity after warping B onto A (affine ECC), or as they are when that is ENOUGH already.

    More than half of the copies in the benchmark pass unwarped, which saves their registration
    (the costly step: a few ms a pair).
    """
    plain = block_similarity(a, b)
    if plain >= enough:
        return plain
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        _, warp = cv2.findTransformECC(fa, fb, warp, cv2.MOTION_AFFINE, ECC_CRITERIA, None, ECC_BLUR)
    except cv2.error:
        return plain  # no convergence (flat or unrelated faces): compare unwarped
    warped = cv2.warpAffine(fb, warp, (SMALL, SMALL), flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP)
    return max(block_similarity(fa, warped), plain)


def confirm(
    pairs: np.ndarray,
    flips: np.ndarray,
    feats: Features,
    emb: np.ndarray | None,
    labels: np.ndarray,
    p: DuplicateParams,
) -> np.ndarray:
    """The candidate pairs that every other signal confirms (cheapest checks first)."""
    if not len(pairs):
        return pairs
    ok = np.concatenate(
        [cheap_checks(pairs[start : start + PAIR_CHUNK], feats, emb, p) for start in range(0, len(pairs), PAIR_CHUNK)]
    )
    for k in np.flatnonzero(ok):
        a, b = pairs[k]
        needed = p.min_registered_correlation if labels[a] == labels[b] else p.min_registered_correlation_labels_differ
        other = feats.small[b][:, ::-1] if flips[k] else feats.small[b]
        ok[k] = registered_similarity(feats.small[a], np.ascontiguousarray(other), needed) >= needed
    return pairs[ok]


def cheap_checks(pairs: np.ndarray, feats: Features, emb: np.ndarray | None, p: DuplicateParams) -> np.ndarray:
    """True where the perceptual hashes and (where both rows have one) the descriptors allow a copy.

    Run on PAIR_CHUNK pairs at a time: the descriptors of a million pairs would take 1 GiB at once.
    """
    i, j = pairs[:, 0], pairs[:, 1]
    h = feats.hashes
    ok = np.minimum(hamming(h[i, 0], h[j, 0]), hamming(h[i, 1], h[j, 0])) <= p.max_hash_distance
    if emb is not None:
        dist = np.linalg.norm(emb[i] - emb[j], axis=1)  # NaN where either row has none: not a veto
        ok &= ~(dist > p.max_embedding_distance)
    return ok


def near_pairs(feats: Features, emb: np.ndarray | None, labels: np.ndarray, p: DuplicateParams) -> np.ndarray:
    pairs, flips = candidate_pairs(feats, p)
    return confirm(pairs, flips, feats, emb, labels, p)


def duplicate_roots(
    meta: pd.DataFrame, feats: Features, emb: np.ndarray | None, p: DuplicateParams
) -> tuple[np.ndarray, dict]:
    """Union-find roots of duplicate groups, and the exact and near pair counts (for the metrics)."""
    uf = UnionFind(len(meta))
    uf.union_labels(feats.sha)
    uf.union_labels(meta["raw_sha256"].to_numpy(dtype=object))
    exact_rows = int((uf.roots() != np.arange(len(meta))).sum())
    labels = meta["label"].to_numpy(dtype=object)
    near = near_pairs(feats, emb, labels, p) if p.near else np.zeros((0, 2), np.int64)
    uf.union_pairs(near)
    return uf.roots(), {"exact_duplicate_rows": exact_rows, "near_duplicate_pairs": int(len(near))}


def keepers(meta: pd.DataFrame, roots: np.ndarray, keep: str, eligible: np.ndarray | None = None) -> np.ndarray:
    """True for the one row kept per duplicate group: an ELIGIBLE row (label in the target set) with the
    highest KEEP value; ties (and NaN) go to the smallest sample_id."""
    order = pd.DataFrame(
        {
            "root": roots,
            "eligible": np.ones(len(meta), bool) if eligible is None else eligible,
            "score": meta[keep].astype("float64").fillna(-np.inf).to_numpy(),
            "id": meta["sample_id"].to_numpy(dtype=object),
        }
    ).sort_values(["root", "eligible", "score", "id"], ascending=[True, False, False, True], kind="stable")
    first = ~order["root"].duplicated()
    out = np.zeros(len(meta), bool)
    out[order.index[first.to_numpy()]] = True
    return out


def label_conflicts(roots: np.ndarray, labels: pd.Series) -> np.ndarray:
    """True for every row of a duplicate group whose rows carry more than one label."""
    n_labels = pd.Series(labels.to_numpy(dtype=object)).groupby(roots).transform("nunique").to_numpy()
    return n_labels > 1
