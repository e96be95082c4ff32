"""dlib's 68-point shape predictor, evaluated for a batch of faces at once.

The model is dlib's own (`shape_predictor_68_face_landmarks.dat` from face_recognition_models):
an ensemble of regression trees (Kazemi & Sullivan 2014), 15 cascades of 500 depth-4 trees
over 500 feature pixels each. dlib evaluates it one face at a time, ~1.7-2.4 ms a face on
this class of machine, mostly waiting on memory (7,500 leaf vectors of 136 floats scattered
over 65 MB) and holding the GIL. Here each cascade runs for a whole batch: vectorised
passes per tree level and one embedding-bag sum of the leaf vectors, 0.46-0.54 ms a face in
batches of 256 (3.3-4.4x less; bench/bench_landmarks.py) with the same arithmetic. A batch of
one is slower than dlib (~4 ms): the fixed cost is per cascade. The result equals dlib's up to float rounding (dlib rounds
the final points to whole pixels; these are the unrounded values): tests/test_faces_ert.py.

Reading dlib's serialisation takes ~12 s in Python, so the arrays are cached once as .npz
(FER_DATA_CACHE, else $XDG_CACHE_HOME/fer-data, else ~/.cache/fer-data), written atomically
because parallel workers may race to create it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

#: Bumped when the cached arrays' layout changes.
CACHE_FORMAT = 1
DEPTH = 4
SPLITS = 2**DEPTH - 1
LEAVES = 2**DEPTH


@dataclass(frozen=True, eq=False)
class Model:
    """A cascade of regression-tree forests, as flat arrays (C cascades, T trees, P feature pixels)."""

    initial: np.ndarray  # (K, 2) float32, the mean shape in the box's [0, 1] frame
    anchor: np.ndarray  # (C, P) int64: landmark each feature pixel is placed relative to
    delta: np.ndarray  # (C, P, 2) float32: its offset from that landmark, in mean-shape units
    idx1: np.ndarray  # (C, T * SPLITS) int64: feature pixels compared at each split node
    idx2: np.ndarray
    thresh: np.ndarray  # (C, T * SPLITS) float32
    leaves: np.ndarray  # (C, T * LEAVES, 2K) float32: shape increments

    @property
    def trees(self) -> int:
        return self.idx1.shape[1] // SPLITS

    @cached_property
    def idx1_i32(self) -> np.ndarray:
        return self.idx1.astype(np.int32)

    @cached_property
    def idx2_i32(self) -> np.ndarray:
        return self.idx2.astype(np.int32)

    @cached_property
    def thresh_floor(self) -> np.ndarray:
        """For whole-number pixel differences d (|d| <= 255), d > t exactly when d > floor(t)."""
        return np.clip(np.floor(self.thresh), -256, 256).astype(np.int16)


# ---------------------------------------------------------------- dlib's file format
class _Reader:
    """dlib/serialize.h: ints as a size byte (0x80 = negative) + little-endian bytes; floats as
    (mantissa, exponent) int pairs; std::vector as size + items; matrices as -rows, -cols + items."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def int(self) -> int:
        h = self.data[self.pos]
        n = h & 0x0F
        v = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -v if h & 0x80 else v

    def floats(self, k: int) -> np.ndarray:
        d, p, from_bytes = self.data, self.pos, int.from_bytes
        pairs = np.empty((k, 2), np.int64)
        for i in range(k):
            for j in (0, 1):
                h = d[p]
                n = h & 15
                v = from_bytes(d[p + 1 : p + 1 + n], "little")
                p += 1 + n
                pairs[i, j] = -v if h & 0x80 else v
        self.pos = p
        return np.ldexp(pairs[:, 0].astype(np.float64), pairs[:, 1]).astype(np.float32)

    def matrix(self) -> np.ndarray:
        rows, cols = abs(self.int()), abs(self.int())
        return self.floats(rows * cols)


def read_dlib(path: str | Path) -> Model:
    """Parse a dlib shape_predictor file (serialisation version 1) into flat arrays."""
    r = _Reader(Path(path).read_bytes())
    if r.int() != 1:
        raise ValueError(f"{path}: not a dlib shape_predictor (version 1) file")
    initial = r.matrix().reshape(-1, 2)
    idx1, idx2, thresh, leaves = [], [], [], []
    for _ in range(r.int()):  # cascades
        c1, c2, ct, cl = [], [], [], []
        for _ in range(r.int()):  # trees
            n_splits = r.int()
            if n_splits != SPLITS:
                raise ValueError(f"{path}: trees of depth {DEPTH} expected, found {n_splits} splits")
            for _ in range(n_splits):
                c1.append(r.int())
                c2.append(r.int())
                ct.append(r.floats(1)[0])
            cl.extend(r.matrix() for _ in range(r.int()))
        idx1.append(c1), idx2.append(c2), thresh.append(ct), leaves.append(np.stack(cl))
    anchor = [[r.int() for _ in range(r.int())] for _ in range(r.int())]
    delta = [r.floats(2 * (k := r.int())).reshape(k, 2) for _ in range(r.int())]
    if r.pos != len(r.data):
        raise ValueError(f"{path}: {len(r.data) - r.pos} bytes left after the model")
    return Model(initial.astype(np.float32), np.array(anchor, np.int64), np.stack(delta),
                 np.array(idx1, np.int64), np.array(idx2, np.int64), np.array(thresh, np.float32), np.stack(leaves))


def cache_dir() -> Path:
    if os.environ.get("FER_DATA_CACHE"):
        return Path(os.environ["FER_DATA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fer-data"


def load(path: str | Path) -> Model:
    """The model of a dlib .dat file, from the .npz cache when it is there (else parsed and cached)."""
    path = Path(path)
    cached = cache_dir() / f"{path.stem}-{path.stat().st_size}-v{CACHE_FORMAT}.npz"
    if cached.exists():
        with np.load(cached) as z:
            return Model(**{k: z[k] for k in Model.__dataclass_fields__})
    model = read_dlib(path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: getattr(model, k) for k in Model.__dataclass_fields__})
        os.chmod(tmp, 0o644)  # mkstemp makes it private; it is a cache anyone may read
        os.replace(tmp, cached)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return model


@lru_cache(maxsize=1)
def default_model() -> Model:
    import warnings

    with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition_models
    return load(face_recognition_models.pose_predictor_model_location())


# ---------------------------------------------------------------- evaluation
def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(N, 2, 2) least-squares scaled rotations taking the centred `src` (K, 2) onto each `dst` (N, K, 2).

    dlib's find_similarity_transform (Umeyama) gives the same matrix for these shapes.
    """
    s = src - src.mean(axis=0)
    d = dst - dst.mean(axis=1, keepdims=True)
    norm = float((s**2).sum())
    a = (d[..., 0] @ s[:, 0] + d[..., 1] @ s[:, 1]) / norm
    b = (d[..., 1] @ s[:, 0] - d[..., 0] @ s[:, 1]) / norm
    return np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)


#: Faces evaluated together. Each cascade's leaf table (4.4 MB) is read from memory once a
#: chunk, so chunks are large; the tree walk's index arrays should stay in cache, so it runs in
#: slices of WALK faces (one core, 48x48 faces: 0.64 ms a face at 64 against 0.85 ms at 256).
CHUNK = 256
WALK = 64


def predict(images: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]], model: Model | None = None) -> np.ndarray:
    """(N, K, 2) landmarks of the face in each box (left, top, right, bottom) of each grey uint8 image."""
    model = model or default_model()
    if len(images) == 0:
        return np.zeros((0, len(model.initial), 2), np.float64)
    return np.concatenate([_predict_chunk(images[i : i + CHUNK], boxes[i : i + CHUNK], model)
                           for i in range(0, len(images), CHUNK)])


def _predict_chunk(images: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]], model: Model) -> np.ndarray:
    import torch
    from torch.nn.functional import embedding_bag

    n = len(images)
    flat, offsets, widths, heights = _pack(images)
    box = np.asarray(boxes, np.float64).reshape(n, 4)
    origin_x, origin_y = box[:, 0:1], box[:, 1:2]  # (N, 1): the box's top-left corner
    extent_x, extent_y = box[:, 2:3] - box[:, 0:1], box[:, 3:4] - box[:, 1:2]  # right - left, bottom - top
    # Padded-image coordinates run -1..w: clipping sends every outside point to the zero border.
    max_x, max_y, stride, offsets = widths[:, None], heights[:, None], widths[:, None] + 2, offsets[:, None]
    shape = np.broadcast_to(model.initial, (n, *model.initial.shape)).copy()  # float32, box frame
    trees = model.trees
    tree_base = np.arange(trees, dtype=np.int32) * SPLITS
    leaf_base = torch.arange(trees) * LEAVES
    walk_offsets = np.arange(WALK, dtype=np.int32)[:, None] * model.anchor.shape[1]  # row starts in a slice
    for c in range(len(model.idx1)):
        t = _similarity(model.initial, shape)  # (N, 2, 2)
        dx, dy = model.delta[c, :, 0], model.delta[c, :, 1]
        # In image pixels: the box mapping folded into the 68 landmarks and the 2x2 transform.
        lx = (origin_x + shape[..., 0] * extent_x).astype(np.float32).take(model.anchor[c], axis=1)
        ly = (origin_y + shape[..., 1] * extent_y).astype(np.float32).take(model.anchor[c], axis=1)
        ex = (t[:, 0] * extent_x).astype(np.float32)
        ey = (t[:, 1] * extent_y).astype(np.float32)
        x = ex[:, 0:1] * dx + ex[:, 1:2] * dy + lx
        y = ey[:, 0:1] * dx + ey[:, 1:2] * dy + ly
        x = np.minimum(np.maximum(np.rint(x), -1), max_x).astype(np.int32)  # dlib's point() rounds
        y = np.minimum(np.maximum(np.rint(y), -1), max_y).astype(np.int32)
        feats = flat.take(offsets + (y + 1) * stride + (x + 1)).astype(np.int16)  # (N, P); 0 outside, as dlib
        leaf = np.concatenate([_leaf_index(model, c, part, tree_base, walk_offsets[: len(part)])
                               for part in np.split(feats, range(WALK, n, WALK))])
        leaf = torch.from_numpy(leaf.astype(np.int64)) + leaf_base
        shape += embedding_bag(leaf, _leaves(model, c), mode="sum").numpy().reshape(shape.shape)
    points = shape.astype(np.float64)
    return np.stack([origin_x + points[..., 0] * extent_x, origin_y + points[..., 1] * extent_y], axis=-1)


def _leaf_index(model: Model, c: int, feats: np.ndarray, tree_base: np.ndarray, row_offsets: np.ndarray) -> np.ndarray:
    """(N, T) leaf reached in each tree of cascade c: left where f[idx1] - f[idx2] > thresh (dlib's rule).

    Feature pixels are whole numbers, so the float threshold becomes its floor and the walk runs
    in int16/int32 (half the memory traffic). The top two levels hold three fixed nodes a tree:
    all three are compared with column gathers and the path selected; the deeper levels use
    flat 1-D `take`s. Per face: 0.26 ms against 0.64 ms for 2-D fancy indexing at every level.
    """
    idx1, idx2, thresh = model.idx1_i32[c], model.idx2_i32[c], model.thresh_floor[c]

    def go_left_at(node: int) -> np.ndarray:
        k = tree_base + node
        return (feats[:, idx1[k]] - feats[:, idx2[k]]) > thresh[k]

    root = go_left_at(0)
    second = np.where(root, go_left_at(1), go_left_at(2))
    node = (3 + 2 * ~root + ~second).astype(np.int32)  # the four nodes of level 2: 3..6
    flat = feats.ravel()
    for _ in range(DEPTH - 2):
        k = tree_base + node
        go_left = (flat.take(row_offsets + idx1.take(k)) - flat.take(row_offsets + idx2.take(k))) > thresh.take(k)
        node = 2 * node + 2 - go_left
    return node - SPLITS


def _leaves(model: Model, cascade: int):
    import torch

    return torch.from_numpy(model.leaves[cascade])


def _pack(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All images, each with a 1-pixel zero border, in one flat uint8 buffer (one gather for all features)."""
    import cv2

    padded = [cv2.copyMakeBorder(np.ascontiguousarray(im, np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
              for im in images]
    sizes = np.array([im.size for im in padded], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    heights = np.array([im.shape[0] for im in images], np.int64)
    widths = np.array([im.shape[1] for im in images], np.int64)
    return np.concatenate([im.ravel() for im in padded]), offsets, widths, heights

