"""dlib's 68-point shape predictor, evaluated for a batch of faces at once.

The model is dlib's own (`shape_predictor_68_face_landmarks.dat` from face_recognition_models):
an ensemble of regression trees (Kazemi & Sullivan 2014), 15 cascades of 500 depth-4 trees
over 500 feature pixels each. dlib evaluates it one face at a time, ~2 ms a face on this class
of machine, mostly waiting on memory: each face adds 7,500 leaf vectors of 136 floats scattered
over 65 MB. Here a compiled kernel (numba) runs each cascade over a whole chunk of faces tree
by tree, so a tree's 16 leaf vectors stay in L1 while every face of the chunk adds one of them
(bench/bench_landmarks.py has the figures). The arithmetic is dlib's, in dlib's order: after
dlib's rounding to whole pixels the points are the same (tests/test_faces_ert.py); these are
the unrounded values.

Reading dlib's serialisation takes ~12 s in Python, so the arrays are cached once as .npz
(in fer_data.env.cache_dir), written atomically because parallel workers may race to create it.
numba caches the compiled kernel beside this module (~7 s to compile once, ~0.5 s to load).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numba
import numpy as np

from fer_data.env import cache_dir  # noqa: F401  (public here too)
from fer_data.faces.dlib_format import Reader, cached_arrays

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


# ---------------------------------------------------------------- dlib's file format
def read_dlib(path: str | Path) -> Model:
    """Parse a dlib shape_predictor file (serialisation version 1) into flat arrays."""
    r = Reader(Path(path).read_bytes())  # dlib/serialize.h primitives, shared with the face encoder
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
    return Model(
        initial.astype(np.float32),
        np.array(anchor, np.int64),
        np.stack(delta),
        np.array(idx1, np.int64),
        np.array(idx2, np.int64),
        np.array(thresh, np.float32),
        np.stack(leaves),
    )


def load(path: str | Path) -> Model:
    """The model of a dlib .dat file, from the .npz cache when it is there (else parsed and cached)."""

    def parse(p: Path) -> dict[str, np.ndarray]:
        model = read_dlib(p)
        return {k: getattr(model, k) for k in Model.__dataclass_fields__}

    arrays = cached_arrays(path, CACHE_FORMAT, parse)
    return Model(**{k: arrays[k] for k in Model.__dataclass_fields__})


@lru_cache(maxsize=1)
def default_model() -> Model:
    import warnings

    with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition_models
    return load(face_recognition_models.pose_predictor_model_location())


# ---------------------------------------------------------------- evaluation
#: Faces evaluated together: each cascade's leaf table (4.4 MB) is then read from memory once a
#: chunk and stays in cache while every face of the chunk walks that cascade's 500 trees.
CHUNK = 256


def predict(
    images: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]], model: Model | None = None
) -> np.ndarray:
    """(N, K, 2) landmarks of the face in each box (left, top, right, bottom) of each grey uint8 image."""
    model = model or default_model()
    if len(images) == 0:
        return np.zeros((0, len(model.initial), 2), np.float64)
    return np.concatenate(
        [_predict_chunk(images[i : i + CHUNK], boxes[i : i + CHUNK], model) for i in range(0, len(images), CHUNK)]
    )


def _predict_chunk(
    images: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]], model: Model
) -> np.ndarray:
    flat, offsets, widths, heights = _pack(images)
    box = np.asarray(boxes, np.float64).reshape(len(images), 4)
    origin = np.ascontiguousarray(box[:, :2])
    extent = np.ascontiguousarray(box[:, 2:] - box[:, :2])  # right - left, bottom - top, as dlib's mapping
    shape = _evaluate(
        flat,
        offsets,
        widths,
        heights,
        origin,
        extent,
        model.initial,
        model.anchor,
        model.delta,
        model.idx1,
        model.idx2,
        model.thresh,
        model.leaves,
    )
    return origin[:, None, :] + shape.astype(np.float64) * extent[:, None, :]


def _pack(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All images in one flat uint8 buffer, so the kernel takes one array however many images."""
    arrays = [np.ascontiguousarray(im, np.uint8) for im in images]
    sizes = np.array([im.size for im in arrays], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    heights = np.array([im.shape[0] for im in arrays], np.int64)
    widths = np.array([im.shape[1] for im in arrays], np.int64)
    return np.concatenate([im.ravel() for im in arrays]), offsets, widths, heights


#: Compiled once and cached on disk beside this module (numba's cache), so later runs load it.
_compiled = numba.njit(cache=True, nogil=True)


@_compiled
def _evaluate(flat, offsets, widths, heights, origin, extent, initial, anchor, delta, idx1, idx2, thresh, leaves):
    """dlib's shape_predictor::operator() for a chunk of faces, cascade by cascade.

    Compiled: vectorised over faces in numpy the same work spent most of its time building
    index arrays (0.46 ms a face); a per-face Python loop would be ~100x slower than either.
    Arithmetic follows dlib: the shape and transform in float32, the box mapping in double,
    feature pixels at the rounded point (0 outside the image), each tree's leaf added in turn.
    """
    n, k, cascades, pixels = len(offsets), len(initial), anchor.shape[0], anchor.shape[1]
    trees = idx1.shape[1] // SPLITS
    shape = np.empty((n, k, 2), np.float32)
    shape[:] = initial
    flat_shape = shape.reshape(n, 2 * k)  # a view: leaf vectors are added to it as (x0, y0, x1, ...)
    feats = np.empty((n, pixels), np.float32)
    leaf_of = np.empty(n, np.int64)
    centre = np.zeros(2, np.float64)
    for j in range(k):
        centre[0] += initial[j, 0] / k
        centre[1] += initial[j, 1] / k
    for c in range(cascades):
        for f in range(n):
            _feature_pixels(
                flat,
                offsets[f],
                widths[f],
                heights[f],
                origin[f],
                extent[f],
                initial,
                centre,
                shape[f],
                anchor[c],
                delta[c],
                feats[f],
            )
        # Tree by tree over all faces: a tree's 16 leaf vectors stay in L1 while every face adds
        # one of them (face by face, each face would pull 500 scattered rows from L3 a cascade).
        # The walk is branch-free and runs for all faces before the adds (0.25 vs 0.36 ms a face).
        for t in range(trees):
            first = t * SPLITS
            for f in range(n):
                node = 0
                for _ in range(DEPTH):
                    i = first + node
                    node = 2 * node + 2 - np.int64(feats[f, idx1[c, i]] - feats[f, idx2[c, i]] > thresh[c, i])
                leaf_of[f] = t * LEAVES + node - SPLITS
            for f in range(n):
                leaf, row = leaves[c, leaf_of[f]], flat_shape[f]
                for m in range(2 * k):
                    row[m] += leaf[m]
    return shape


@_compiled
def _feature_pixels(flat, base, w, h, origin, extent, initial, centre, shape, anchor, delta, out):
    """dlib's extract_feature_pixel_values: each pixel placed off its anchor landmark by the
    current shape's similarity to the mean shape, read at the rounded point, 0 outside the image."""
    a, b = _similarity(initial, centre, shape)
    for p in range(len(anchor)):
        q = anchor[p]
        dx, dy = delta[p, 0], delta[p, 1]
        qx = a * dx - b * dy + shape[q, 0]
        qy = b * dx + a * dy + shape[q, 1]
        x = np.floor(origin[0] + extent[0] * np.float64(qx) + 0.5)
        y = np.floor(origin[1] + extent[1] * np.float64(qy) + 0.5)
        if 0 <= x < w and 0 <= y < h:
            out[p] = flat[base + np.int64(y) * w + np.int64(x)]
        else:
            out[p] = 0


@_compiled
def _similarity(src, centre, dst):
    """(a, b) of the least-squares scaled rotation [[a, -b], [b, a]] taking the shape `src` onto `dst`.

    dlib's find_similarity_transform (Umeyama) gives the same matrix for two shapes; float32 as dlib.
    """
    k = len(src)
    mx = my = 0.0
    for j in range(k):
        mx += dst[j, 0]
        my += dst[j, 1]
    mx, my = mx / k, my / k
    num_a = num_b = norm = 0.0
    for j in range(k):
        sx, sy = src[j, 0] - centre[0], src[j, 1] - centre[1]
        tx, ty = dst[j, 0] - mx, dst[j, 1] - my
        num_a += sx * tx + sy * ty
        num_b += sx * ty - sy * tx
        norm += sx * sx + sy * sy
    return np.float32(num_a / norm), np.float32(num_b / norm)
