"""Train / val / test by leak group: stratified by class as far as the groups allow, fixed by a seed.

A leak group (rows joined by a duplicate group, an identity or a subject id) goes to one split
whole. Groups that hold rows of a source kept on its official split go where those rows are;
a group whose official splits disagree straddles them, and `corpus.splits.straddle` resolves it:
`drop_eval` keeps the group on its most training-side split and drops its rows fixed elsewhere
(drop_reason leak_straddle); `move_to_train` puts the whole group in train.
The other groups are placed largest first (ties in a seeded random order), each in the split
whose class counts are furthest below their targets for the group's classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fer_data.corpus.params import SPLITS


def _resolve_fixed(fixed: set[str], straddle: str) -> str:
    if len(fixed) == 1:
        return next(iter(fixed))
    return "train" if straddle == "move_to_train" else min(fixed, key=SPLITS.index)


def assign(
    leak: np.ndarray,
    labels: Sequence[object],
    fixed: Sequence[object],
    counted: np.ndarray,
    classes: Sequence[str],
    ratios: Mapping[str, float],
    seed: int,
    straddle: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(split per row, True where a row is dropped as leak_straddle); COUNTED rows are the ones stratified."""
    frame = pd.DataFrame({"leak": leak, "label": labels, "fixed": fixed, "counted": counted})
    class_index = {c: k for k, c in enumerate(classes)}
    frame["cls"] = frame["label"].map(class_index).fillna(-1).astype(int)
    groups = {g: idx.to_numpy() for g, idx in frame.groupby("leak", sort=True).groups.items()}
    ratio = np.array([ratios[s] for s in SPLITS])
    kept = frame[frame["counted"] & (frame["cls"] >= 0)]
    totals = np.bincount(kept["cls"], minlength=len(classes)).astype(float)
    target = ratio[:, None] * totals[None, :]
    current = np.zeros_like(target)
    split = np.empty(len(frame), dtype=object)
    dropped = np.zeros(len(frame), bool)

    def place(rows: np.ndarray, s: int) -> None:
        split[rows] = SPLITS[s]
        live = rows[frame["counted"].to_numpy()[rows] & ~dropped[rows] & (frame["cls"].to_numpy()[rows] >= 0)]
        np.add.at(current[s], frame["cls"].to_numpy()[live], 1)

    free = []
    fixed_col = frame["fixed"].to_numpy(dtype=object)
    for g, rows in groups.items():
        official = {f for f in fixed_col[rows] if isinstance(f, str)}
        if not official:
            free.append(g)
            continue
        chosen = _resolve_fixed(official, straddle)
        dropped[rows] = np.array([isinstance(f, str) and f != chosen for f in fixed_col[rows]]) & (
            straddle == "drop_eval"
        )
        place(rows, SPLITS.index(chosen))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(free))
    sizes = np.array([len(groups[free[k]]) for k in order])
    cls_all = frame["cls"].to_numpy()
    counted_all = frame["counted"].to_numpy()
    scale = np.where(totals > 0, 1.0 / np.maximum(totals, 1), 0.0)
    for k in order[np.argsort(-sizes, kind="stable")]:
        rows = groups[free[k]]
        live = rows[counted_all[rows] & (cls_all[rows] >= 0)]
        need = np.bincount(cls_all[live], minlength=len(classes)).astype(float)
        deficit = target - current
        score = (deficit * need[None, :] * scale[None, :]).sum(axis=1)
        overall = deficit.sum(axis=1) / max(totals.sum(), 1)
        score = np.where(ratio > 0, score, -np.inf)
        overall = np.where(ratio > 0, overall, -np.inf)
        best = max(range(len(SPLITS)), key=lambda s: (score[s], overall[s], -s))
        place(rows, best)
    return split, dropped
