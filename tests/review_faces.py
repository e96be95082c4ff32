"""Real faces for the label-review tests and bench: FER2013's image-folder sample and CK+48 (../shared/realdata).

Both are 48x48 grey crops in class folders. The loaders return the faces, their FER2013_7 class
indices, a stable id per file and the leak group a corpus build would give it (CK+48: the
subject, whose three near-identical last frames of a sequence must never straddle folds;
FER2013: the file itself, its people are unknown). `corpus_of` writes them as a corpus folder
(train.synthetic.write_corpus) with labels possibly flipped.

`curated` reads the same samples (and CK+, JAFFE) the way a real corpus gets them: curated by the
pipeline (fer_data.curate: face found, aligned, 68 landmarks, 128-d embedding), so the corpus's
faces are the aligned ones and it carries the `landmarks` and `embedding` columns.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from train.synthetic import FER2013_7, write_corpus

#: Folder names of each sample -> canonical class (FER2013_7 names).
FOLDER_CLASSES = {
    "angry": "anger",
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
#: Confusable pairs (FER's best-known confusions) used to plant realistic label noise.
CONFUSABLE = {"fear": "surprise", "surprise": "fear", "sadness": "neutral", "neutral": "sadness",
              "anger": "disgust", "disgust": "anger", "happiness": "surprise"}  # fmt: skip


def load_folder(root: Path, group_of=None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(images (N, 48, 48) uint8, labels (N,) FER2013_7 indices, ids, leak groups) of root/**/<class>/*."""
    images, labels, ids, groups = [], [], [], []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if grey is None or path.parent.name not in FOLDER_CLASSES:
            continue
        images.append(cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA) if grey.shape != (48, 48) else grey)
        labels.append(FER2013_7.index(FOLDER_CLASSES[path.parent.name]))
        rel = str(path.relative_to(root))
        ids.append(rel)
        groups.append(group_of(path) if group_of else rel)
    return np.stack(images), np.array(labels, np.int64), ids, groups


def fer2013(realdata: Path):
    return load_folder(realdata / "fer2013" / "images")


def ckplus48(realdata: Path):
    return load_folder(realdata / "ckplus48" / "CK+48", group_of=lambda p: "ckplus:" + p.name.split("_")[0])


def ranking_scores(rank: np.ndarray, wrong: np.ndarray, recall: float = 0.6) -> dict:
    """Precision where the ranking (1 first) first reaches RECALL of the WRONG rows, and the ranking's AUC.

    The AUC is how often a wrong row is ranked above a clean one, over every (wrong, clean) pair.
    """
    order = np.argsort(rank)
    hits = np.cumsum(wrong[order])
    at = int(np.searchsorted(hits, np.ceil(recall * wrong.sum()))) + 1
    auc = (rank[wrong][:, None] < rank[~wrong][None, :]).mean()
    return {f"precision_at_recall_{recall}": hits[at - 1] / at, "auc": float(auc)}


def flip_labels(labels: np.ndarray, rate: float, mode: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, flipped mask): RATE of the rows get another class, uniformly or to its confusable partner."""
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    present = np.unique(labels)
    chosen = rng.choice(len(labels), size=round(rate * len(labels)), replace=False)
    for i in chosen:
        if mode == "confusable":
            partner = FER2013_7.index(CONFUSABLE[FER2013_7[labels[i]]])
            noisy[i] = partner if partner in present else rng.choice(present[present != labels[i]])
        else:
            noisy[i] = rng.choice(present[present != labels[i]])
    return noisy, noisy != labels


def corpus_of(out: Path, images: np.ndarray, labels: np.ndarray, ids: list[str], groups: list[str], **columns) -> Path:
    """A corpus whose train split holds every face (leak groups as given, sources 'real')."""
    sources = np.array(["real"] * len(labels))
    extra = {"leak_group": groups, "locator": ids, **columns}
    return write_corpus(out, images, labels, np.array(["train"] * len(labels)), sources=sources, columns=extra)


#: Samples the pipeline curates (fer_data.curate): source, folder under realdata, that source's params.
CURATED = {
    "ckplus48": ("folder", ("ckplus48", "CK+48"), {"precropped": True, "subject_pattern": r"^(?P<subject>S\d+)_"}),
    "fer2013": ("folder", ("fer2013", "images"), {"precropped": True, "subject_pattern": None}),
    "ckplus": ("ckplus", ("ckplus",), {}),
    "jaffe": ("jaffe", ("jaffe",), {}),
}
#: Curated columns a corpus passes on to the out-of-fold models.
FEATURE_COLUMNS = ("landmarks", "embedding")


def curated(realdata: Path, names: str, work: Path):
    """(images, labels, ids, groups, columns) of NAMES ("ckplus48", "ckplus+jaffe") curated into WORK once.

    Each face is the pipeline's aligned 48x48 face; its leak group is "<name>:<subject>" (the file where the
    dataset names no person: FER2013); columns holds FEATURE_COLUMNS (None where the curation has none, e.g. a
    pre-cropped face kept unaligned).
    """
    from fer_data import params as params_mod
    from fer_data.curate import curate

    frames = []
    for name in names.split("+"):
        source, where, source_params = CURATED[name]
        out = work / "curated" / name
        if not (out / "metrics.json").exists():
            raw = {"run": {"workers": 1, "shard_size": 512}, "faces": {"embeddings": True}}
            raw["sources"] = {source: source_params} if source_params else {}
            curate(source, realdata.joinpath(*where), out, params_mod.resolve(raw))
        frame = pd.read_parquet(out / "curated.parquet")
        subject = name + ":" + frame["subject_id"]
        frames.append(
            frame.assign(id=name + "/" + frame["locator"], group=subject.fillna(name + "/" + frame["locator"]))
        )
    rows = pd.concat(frames, ignore_index=True)
    images = np.stack(
        [np.frombuffer(b, np.uint8).reshape(h, w) for b, h, w in zip(rows["image"], rows["height"], rows["width"])]
    )
    labels = np.array([FER2013_7.index(label) for label in rows["label"]], np.int64)
    columns = {c: [None if v is None else np.asarray(v, np.float32).tolist() for v in rows[c]] for c in FEATURE_COLUMNS}
    return images, labels, rows["id"].tolist(), rows["group"].tolist(), columns
