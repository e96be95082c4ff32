"""A small corpus in `fer-data corpus`'s layout for the train/ tests, from real demo faces (LFW crops).

Face k of the 100 LFW crops always carries label k mod 7, so a model can learn something in a few
epochs; rows are faces with a little brightness jitter, from two sources, several shards per split,
FER+-style votes on every third row (6 for the label, 2 for the next class, 2 for contempt).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_data.demo import DemoFaces
from train.synthetic import CANONICAL, FER2013_7, write_corpus


def demo_corpus(out: Path, rows: int = 240, rows_per_shard: int = 50, row_group_size: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    faces = DemoFaces(seed)
    base = np.stack([faces.face(k, 48) for k in range(len(faces))])
    face_of_row = np.arange(rows) % len(base)
    jitter = rng.normal(0, 6, (rows, 1, 1))
    images = np.clip(base[face_of_row] + jitter, 0, 255).astype(np.uint8)
    labels = face_of_row % len(FER2013_7)
    splits = np.array(["train", "train", "train", "train", "val", "test"])[np.arange(rows) % 6]
    sources = np.where(np.arange(rows) % 5 < 2, "jaffe", "ckplus")
    votes = np.full((rows, len(CANONICAL)), np.nan, np.float32)
    with_votes = np.arange(rows) % 3 == 0
    for r in np.flatnonzero(with_votes):
        votes[r] = 0
        votes[r, CANONICAL.index(FER2013_7[labels[r]])] = 6
        votes[r, CANONICAL.index(FER2013_7[(labels[r] + 1) % len(FER2013_7)])] = 2
        votes[r, CANONICAL.index("contempt")] = 2  # outside fer2013_7: dropped by the loader
    return write_corpus(out, images, labels, splits, sources=sources, votes=votes, rows_per_shard=rows_per_shard,
                        row_group_size=row_group_size)  # fmt: skip
