"""Out-of-fold predictions: every training row scored by a model that never saw it, its duplicates or its person.

Label review (fer_data.review) ranks rows by how far their given label is from what a model
predicts; a model that trained on the row would just recall the (possibly wrong) label. So the
train split is cut into K folds along the corpus's `leak_group` (duplicates, identities and
subjects joined: a group never straddles folds), K models each train on K-1 folds, and each
predicts the fold it left out. Memory: one memory-mapped image cache (train.data) and (rows x
classes) probabilities; time: K trainings of the chosen model.

Models: the corpus's CNNs (train.models, with train.augment's augmentation) on the faces; or
multinomial logistic regressions on fixed features, which need no more faces than a dataset has
classes to learn something (LOGREG_MEMBERS): `hog_logreg` on histograms of oriented gradients of
the aligned face (Dalal and Triggs' HOG, the classic FER feature); `landmark_logreg` on the face's
shape, the distances between its 51 inner landmarks (brows, eyes, nose, mouth: where posed
expressions show); `landmark_hog_logreg` averages the two regressions' probabilities (a row without
landmarks, a pre-cropped face kept unaligned, is scored by HOG alone); `embedding_logreg` on the
128-d face descriptors (`embedding`), which are trained for identity. On CK+48 with 5 % of labels
flipped, the out-of-fold accuracy (against the true labels) went from 77 % (HOG) to 84-88 % (landmarks,
landmarks + HOG), and detection precision at recall 0.6 from ~0.5 to 0.75-1.0 (BENCHMARKS.md, "Label
review").
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from train import models
from train.augment import affine, step_generator, to_input
from train.data import Corpus, CorpusError, ShardStore
from train.fit import pick_device
from train.oof_params import EMBEDDING_MODEL, HOG_MODEL, LANDMARK_HOG_MODEL, LANDMARK_MODEL, OofParams

log = logging.getLogger("train.oof")

SPLIT = "train"
#: HOG geometry: 8 px cells, 9 unsigned orientations, 2x2-cell blocks L2-normalised and clipped at 0.2
#: (Dalal and Triggs' defaults); on a 48 px face that is 900 features. 8 px beat 6 px on CK+48 (85 vs 78 %).
HOG_CELL, HOG_BINS, HOG_CLIP = 8, 9, 0.2
FEATURE_CHUNK = 4096  # faces turned into features at a time (bounded memory on any corpus size)
PREDICT_BATCH = 512
#: L2 penalty of the logistic regression on standardised HOG or embedding features: strong enough that a few
#: hundred rows of 128-900 features do not separate perfectly (probabilities of 0 and 1 would make every row
#: look certain).
LOGREG_L2 = 1e-2
#: ... and on the 1,275 landmark distances, which are strongly correlated (one mouth opening moves hundreds
#: of them): 0.3 (of 0.1-3 tried) gave the best detection on CK+48 and CK+ (BENCHMARKS.md, "Label review").
LANDMARK_L2 = 0.3
LOGREG_ITERATIONS = 200
#: A person (leak group) needs this many rows for their mean face to stand for them rather than for the
#: expressions of their few photos (review.oof.person_features); smaller groups are centred on all rows.
PERSON_MIN_ROWS = 3
#: Inner landmarks of dlib's 68-point layout: 17-67 (brows, nose, eyes, mouth). The jaw line (0-16) is left out:
#: it carries pose and face shape more than expression and is guessed where tight crops cut the chin (with it,
#: CK+48's out-of-fold accuracy was 81-84 % against 87-89 % without, and detection was worse).
INNER_LANDMARKS = slice(17, 68)
#: Each fixed-feature model: the (feature, L2 penalty) regressions whose probabilities it averages.
LOGREG_MEMBERS = {
    HOG_MODEL: (("hog", LOGREG_L2),),
    EMBEDDING_MODEL: (("embedding", LOGREG_L2),),
    LANDMARK_MODEL: (("landmarks", LANDMARK_L2),),
    LANDMARK_HOG_MODEL: (("landmarks", LANDMARK_L2), ("hog", LOGREG_L2)),
}
#: Where a missing feature comes from, for the error message.
FEATURE_ORIGIN = {
    "embedding": "the curated `embedding` column (curate with faces.embeddings: true)",
    "landmarks": f"the curated `landmarks` column (aligned faces; {LANDMARK_HOG_MODEL} scores the others by HOG)",
}
OOF_FILE = "oof.parquet"
SUMMARY_FILE = "oof.json"


def assign_folds(groups: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) of every row: whole groups, each put where its first row's class is rarest so far.

    Groups are placed largest first (ties in a seeded order), so folds end up with about equal
    rows and class mixes. O(rows + groups x k).
    """
    uniq, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(uniq))
    cls = labels[first]
    n_classes = int(labels.max()) + 1 if len(labels) else 1
    order = np.random.default_rng(seed).permutation(len(uniq))
    order = order[np.argsort(-sizes[order], kind="stable")]
    per_class = np.zeros((k, n_classes), np.int64)
    rows = np.zeros(k, np.int64)
    fold_of_group = np.empty(len(uniq), np.int64)
    scale = len(groups) + 1  # one integer key: the class count decides, the row count breaks ties
    for g in order:
        f = int((per_class[:, cls[g]] * scale + rows).argmin())
        fold_of_group[g] = f
        per_class[f, cls[g]] += sizes[g]
        rows[f] += sizes[g]
    return fold_of_group[inverse]


def _shard_columns(corpus: Corpus, names: list[str]) -> dict[str, list]:
    """Columns of the train shards in manifest order: the order ShardStore holds the rows in."""
    out: dict[str, list] = {n: [] for n in names}
    for shard in corpus.shards(SPLIT):
        pf = pq.ParquetFile(corpus.root / shard["path"])
        have = [n for n in names if n in pf.schema_arrow.names]
        table = pf.read(columns=have)
        for n in names:
            out[n] += table.column(n).to_pylist() if n in have else [None] * table.num_rows
    return out


def _vectors(corpus: Corpus, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list column of the train shards as (rows with a value, width) float32 and a (rows,) mask of them."""
    parts, present = [], []
    for shard in corpus.shards(SPLIT):
        pf = pq.ParquetFile(corpus.root / shard["path"])
        if name not in pf.schema_arrow.names:
            present.append(np.zeros(pf.metadata.num_rows, bool))
            continue
        column = pf.read(columns=[name]).column(name)
        present.append(~column.is_null().to_numpy(zero_copy_only=False))
        parts.append(pc.list_flatten(column).to_numpy().astype(np.float32))
    mask = np.concatenate(present) if present else np.zeros(0, bool)
    values = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return values.reshape(int(mask.sum()), -1), mask


def landmark_distances(landmarks: np.ndarray) -> np.ndarray:
    """(n, 1275) float32: distances between every pair of the 51 inner landmarks of (n, 136) flattened (x, y).

    Centred and divided by the points' RMS distance from their centre, so the feature is the face's shape
    alone: free of position, scale and (distances) rotation, whatever the alignment left.
    """
    pts = landmarks.reshape(len(landmarks), 68, 2)[:, INNER_LANDMARKS].astype(np.float64)
    pts = pts - pts.mean(1, keepdims=True)
    pts /= np.sqrt((pts**2).sum((1, 2), keepdims=True) / pts.shape[1]) + 1e-9
    i, j = np.triu_indices(pts.shape[1], 1)
    return np.linalg.norm(pts[:, i] - pts[:, j], axis=2).astype(np.float32)


def _features(corpus: Corpus, store: ShardStore, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(features of the rows that have them, (rows,) mask of those rows) of one LOGREG_MEMBERS feature."""
    if name == "hog":
        return hog_features(store), np.ones(len(store), bool)
    values, present = _vectors(corpus, name)
    return (landmark_distances(values) if name == "landmarks" else values), present


def hog(images: np.ndarray) -> np.ndarray:
    """(n, features) float32 HOG of (n, h, w) uint8 faces (h, w multiples of HOG_CELL; see HOG_CELL)."""
    x = images.astype(np.float32) / 255.0
    gx, gy = np.zeros_like(x), np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    magnitude = np.hypot(gx, gy)
    orientation = np.minimum(((np.arctan2(gy, gx) % np.pi) / np.pi * HOG_BINS).astype(np.int64), HOG_BINS - 1)
    n, h, w = x.shape
    ch, cw = h // HOG_CELL, w // HOG_CELL
    cells = np.zeros((n, ch, cw, HOG_BINS), np.float32)
    crop = (slice(None), slice(0, ch * HOG_CELL), slice(0, cw * HOG_CELL))
    for b in range(HOG_BINS):
        m = np.where(orientation[crop] == b, magnitude[crop], 0).reshape(n, ch, HOG_CELL, cw, HOG_CELL)
        cells[..., b] = m.sum((2, 4))
    blocks = []
    for i in range(ch - 1):
        for j in range(cw - 1):
            v = cells[:, i : i + 2, j : j + 2].reshape(n, -1)
            blocks.append(np.minimum(v / np.sqrt((v * v).sum(1, keepdims=True) + 1e-6), HOG_CLIP))
    return np.concatenate(blocks, 1)


def hog_features(store: ShardStore) -> np.ndarray:
    """HOG of every face of the store, FEATURE_CHUNK faces at a time from the memory map."""
    parts = [hog(np.asarray(store.images[i : i + FEATURE_CHUNK])) for i in range(0, len(store), FEATURE_CHUNK)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


# ---- the kinds of model -------------------------------------------------------------------------


def _fit_logreg(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int, l2: float = LOGREG_L2):
    """A softmax regression on standardised features (full-batch L-BFGS); returns a predict function."""
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=LOGREG_ITERATIONS, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()
    return lambda xs: F.softmax(torch.from_numpy((xs - mean) / std) @ w + b, 1).numpy()


def person_centred(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """X minus the mean of its row's person (leak group) where the person has PERSON_MIN_ROWS rows, else
    minus the mean of all rows.

    What is left is how a face differs from the same person's other faces: the expression, less the
    person's face shape, which a regression on a few hundred faces otherwise takes for an expression
    (JAFFE's three women and CK+'s 20 people). Labels are not used, and a person's rows share a fold,
    so the held-out rows' centring uses only the held-out rows.
    """
    codes, counts = np.unique(groups, return_inverse=True, return_counts=True)[1:]
    sums = np.zeros((len(counts), x.shape[1]), np.float64)
    np.add.at(sums, codes, x)
    out = (x - x.mean(0)).astype(np.float32)
    big = counts[codes] >= PERSON_MIN_ROWS
    out[big] = x[big] - (sums / counts[:, None])[codes[big]]
    return out


def _members(
    corpus: Corpus, store: ShardStore, model: str, groups: np.ndarray, person: str
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(features, rows-with-them mask, L2) of each of MODEL's regressions; CorpusError when a row has none.

    PERSON (review.oof.person_features): "raw" features, "centred" on each person's mean, or "both":
    each regression joined by its twin on the centred features (their probabilities averaged).
    """
    members = [(*_features(corpus, store, name), l2) for name, l2 in LOGREG_MEMBERS[model]]
    covered = np.logical_or.reduce([present for _, present, _ in members])
    if not covered.all():
        name = LOGREG_MEMBERS[model][0][0]
        missing = store.sample_ids[~covered]
        raise CorpusError(
            f"{len(missing)} train rows have no {name} (e.g. {missing[0]}): model {model} needs "
            f"{FEATURE_ORIGIN[name]}, or choose another review.oof.model"
        )
    if person == "raw":
        return members
    centred = [(person_centred(x, groups[present]), present, l2) for x, present, l2 in members]
    return centred if person == "centred" else members + centred


def _predict_members(members, labels: np.ndarray, rest: np.ndarray, held: np.ndarray, n_classes: int, seed: int):
    """HELD rows' probabilities: the mean over the regressions (fitted on REST) that have the row's feature."""
    total = np.zeros((len(held), n_classes), np.float32)
    count = np.zeros(len(held), np.int64)
    for x, present, l2 in members:
        at = np.cumsum(present) - 1  # row -> its line in x (x holds only the rows that have the feature)
        train, test = rest[present[rest]], held[present[held]]
        if len(train) and len(test):
            total[present[held]] += _fit_logreg(x[at[train]], labels[train], n_classes, seed, l2)(x[at[test]])
            count += present[held]
    total[count == 0] = 1.0 / n_classes  # no regression could score the row (its feature's rows all held out)
    return total / np.maximum(count, 1)[:, None]


def _fit_cnn(store: ShardStore, rows: np.ndarray, n_classes: int, p: OofParams, device: torch.device, seed: int):
    """One of train.models on ROWS of the store (SGD, cosine learning rate, augmented batches)."""
    torch.manual_seed(seed)
    model = models.build(p.model, n_classes, store.shape[1]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay)
    batch = min(p.batch_size, len(rows))
    per_epoch = max(1, len(rows) // batch)  # partial last batch dropped: batch norm needs >= 2 rows
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=p.epochs * per_epoch)
    rng = np.random.default_rng(seed)
    model.train()
    for epoch in range(p.epochs):
        order = rng.permutation(rows)
        for step in range(per_epoch):
            idx = np.sort(order[step * batch : (step + 1) * batch])  # sorted: sequential reads from the memory map
            images = torch.from_numpy(np.take(store.images, idx, axis=0)).to(device)
            x = affine(to_input(images), p.augment, step_generator(device, seed, epoch, step))
            loss = F.cross_entropy(model(x), torch.from_numpy(store.labels[idx]).to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()

    @torch.no_grad()
    def predict(idx: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(idx), PREDICT_BATCH):
            part = idx[start : start + PREDICT_BATCH]
            x = to_input(torch.from_numpy(np.take(store.images, part, axis=0)).to(device))
            views = [x, x.flip(3)] if p.tta_flip else [x]
            out.append((sum(F.softmax(model(v), 1) for v in views) / len(views)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)

    return predict


# ---- the run ------------------------------------------------------------------------------------


def out_of_fold(corpus_dir: str | Path, out_dir: str | Path, p: OofParams) -> dict:
    """Write OUT/oof.parquet (sample_id, leak_group, fold, label_index, probs) and OUT/oof.json; return the summary."""
    start = time.perf_counter()
    corpus = Corpus.open(corpus_dir)
    classes = corpus.classes
    store = ShardStore.open(corpus, SPLIT, p.cache_dir)
    cols = _shard_columns(corpus, ["sample_id", "source", "leak_group"])
    if list(cols["sample_id"]) != list(store.sample_ids):
        raise CorpusError(f"{corpus.root}: shard rows changed while reading")
    n = len(store)
    if n < p.folds:
        raise CorpusError(f"{corpus.root}: {n} train rows, fewer than review.oof.folds = {p.folds}")
    groups = np.array([g if g is not None else s for g, s in zip(cols["leak_group"], cols["sample_id"])], object)
    fold = assign_folds(groups, store.labels, p.folds, p.seed)
    members = _members(corpus, store, p.model, groups, p.person_features) if p.model in LOGREG_MEMBERS else None
    device = pick_device(p.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    probs = np.zeros((n, len(classes)), np.float32)
    per_fold = []
    for k in range(p.folds):
        held, rest = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        t0 = time.perf_counter()
        if members is not None:
            probs[held] = _predict_members(members, store.labels, rest, held, len(classes), p.seed + k)
        else:
            probs[held] = _fit_cnn(store, rest, len(classes), p, device, p.seed + k)(held)
        acc = float((probs[held].argmax(1) == store.labels[held]).mean()) if len(held) else 0.0
        per_fold.append({"fold": k, "rows": int(len(held)), "accuracy": round(acc, 4),
                         "seconds": round(time.perf_counter() - t0, 2)})  # fmt: skip
        log.info("oof fold %d/%d: %d rows held out, accuracy %.3f", k + 1, p.folds, len(held), acc)
    summary = {
        "model": p.model,
        "folds": p.folds,
        "rows": n,
        "classes": classes,
        "accuracy": round(float((probs.argmax(1) == store.labels).mean()), 4),
        "per_fold": per_fold,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if members is not None:
        summary["person_features"] = p.person_features
        summary["feature_rows"] = {name: int(m[1].sum()) for (name, _), m in zip(LOGREG_MEMBERS[p.model], members)}
    _write(Path(out_dir), store, cols, groups, fold, probs, summary)
    return summary


def _write(out: Path, store: ShardStore, cols: dict, groups, fold, probs: np.ndarray, summary: dict) -> None:
    """Both files written beside their final names, then renamed (the summary last)."""
    out.mkdir(parents=True, exist_ok=True)
    k = probs.shape[1]
    table = pa.table(
        {
            "sample_id": pa.array(store.sample_ids.tolist(), pa.string()),
            "source": pa.array(cols["source"], pa.string()),
            "leak_group": pa.array(groups.tolist(), pa.string()),
            "fold": pa.array(fold.astype(np.int16)),
            "label_index": pa.array(store.labels.astype(np.int16)),
            "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1), pa.float32()), k),
        }
    )
    tmp = out / f".{OOF_FILE}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, out / OOF_FILE)
    tmp = out / f".{SUMMARY_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out / SUMMARY_FILE)


def read_oof(out_dir: str | Path) -> tuple[pa.Table, np.ndarray]:
    """OUT/oof.parquet's rows and their probabilities as a (rows, classes) float32 array."""
    table = pq.read_table(Path(out_dir) / OOF_FILE)
    column = table.column("probs").combine_chunks()
    k = column.type.list_size
    probs = column.values.to_numpy(zero_copy_only=False).reshape(-1, k) if len(column) else np.zeros((0, k))
    return table.drop(["probs"]), probs.astype(np.float32)
