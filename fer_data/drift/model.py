"""Predicted classes from a trained model, for the predicted-class shift check ("Failing Loudly"'s best).

A model is a `torch.export` program (`.pt2`, `torch.export.save`), a TorchScript file (other
suffixes, `torch.jit.save`; deprecated by torch but still what many trainers write) or any callable. Its input is a float32 tensor
(N, 1, H, W) of aligned grey faces scaled to 0..1, the curated table's `image` as it is; its output
is (N, C) scores over the corpus's `classes` (manifest order, = `label_index`). The argmax is the
prediction. torch is imported only when a model is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

#: Faces per forward pass: bounds memory whatever the batch size.
PREDICT_BATCH = 256

Model = Callable[[object], object]


def load(path: str | Path) -> Model:
    """The model in a file, ready to call on CPU."""
    import warnings

    import torch

    if Path(path).suffix == ".pt2":
        return torch.export.load(str(path)).module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript; files remain
        model = torch.jit.load(str(path), map_location="cpu")
    model.eval()
    return model


def predict(model: Model, faces: np.ndarray) -> np.ndarray:
    """Predicted class index of each (h, w) uint8 face."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(faces), PREDICT_BATCH):
            x = torch.from_numpy(np.ascontiguousarray(faces[i : i + PREDICT_BATCH], np.float32) / 255.0)
            out.append(np.asarray(model(x[:, None])).argmax(axis=1))
    return np.concatenate(out) if out else np.empty(0, int)


def predicted_counts(model: Model, face_batches: Iterable[np.ndarray], classes: Sequence[str]) -> np.ndarray:
    """Class counts of the predictions over batches of faces (one batch in memory at a time)."""
    counts = np.zeros(len(classes), int)
    for faces in face_batches:
        pred = predict(model, faces)
        counts += np.bincount(pred[(pred >= 0) & (pred < len(classes))], minlength=len(classes))
    return counts
