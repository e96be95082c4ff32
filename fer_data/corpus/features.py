"""Per-row signals for duplicate detection, computed in one streaming pass over the aligned faces.

For each row: the sha256 of the aligned face's bytes (exact copies), two 64-bit perceptual
hashes (imagehash's DCT hash of the face and of its mirror image) and the face shrunk to
SMALL x SMALL grey levels (1 KiB a row), from which the search thumbnails are made and on
which candidate pairs are registered. Only these small arrays are kept, never the images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import imagehash
import numpy as np
from PIL import Image

from fer_data.corpus.inputs import Table

#: Below this norm a thumbnail is flat (a blank face): it correlates with nothing.
FLAT_NORM = 1e-3
#: Side of the kept small face: registration at 32 px separated copies from other people as well as
#: at 48 px on real CK+/CK+48/JAFFE (BENCHMARKS.md, "Corpus") at under half the memory.
SMALL = 32
#: Side of the search thumbnail: 256 dimensions keep the exact faiss search cheap.
THUMB = 16


@dataclass
class Features:
    sha: np.ndarray  # object array of hex digests
    hashes: np.ndarray  # (n, 2) uint64: face, mirror image
    small: np.ndarray  # (n, SMALL, SMALL) uint8

    def thumbs(self, mirrored: bool = False) -> np.ndarray:
        """(n, THUMB²) float32 standardised thumbnails (of the mirror images when MIRRORED)."""
        out = np.empty((len(self.small), THUMB * THUMB), np.float32)
        for i, face in enumerate(self.small):
            out[i] = thumbnail(face[:, ::-1] if mirrored else face, THUMB)
        return out


def thumbnail(face: np.ndarray, side: int) -> np.ndarray:
    """The face shrunk to SIDE x SIDE (area averaging), standardised so that a dot product is a correlation."""
    small = cv2.resize(np.ascontiguousarray(face), (side, side), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > FLAT_NORM else np.zeros_like(small)


def phash64(face: np.ndarray) -> int:
    """imagehash's 64-bit DCT perceptual hash as an integer."""
    bits = imagehash.phash(Image.fromarray(face)).hash.ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def face_features(face: np.ndarray) -> tuple[str, int, int, np.ndarray]:
    return (
        hashlib.sha256(face.tobytes()).hexdigest(),
        phash64(face),
        phash64(np.ascontiguousarray(face[:, ::-1])),
        cv2.resize(face, (SMALL, SMALL), interpolation=cv2.INTER_AREA),
    )


def compute(tables: Sequence[Table]) -> Features:
    """Features of every row of TABLES, in the tables' order and their rows' order."""
    shas, hashes, smalls = [], [], []
    for table in tables:
        for batch in table.batches(["image", "width", "height"]):
            widths = batch.column("width").to_numpy()
            heights = batch.column("height").to_numpy()
            for blob, w, h in zip(batch.column("image").to_pylist(), widths, heights):
                sha, ph, ph_m, small = face_features(np.frombuffer(blob, np.uint8).reshape(int(h), int(w)))
                shas.append(sha)
                hashes.append((ph, ph_m))
                smalls.append(small)
    return Features(
        sha=np.array(shas, dtype=object),
        hashes=np.array(hashes, dtype=np.uint64).reshape(-1, 2),
        small=np.array(smalls, dtype=np.uint8).reshape(len(shas), SMALL, SMALL),
    )


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 arrays (elementwise)."""
    x = np.bitwise_xor(a, b)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(axis=-1)
