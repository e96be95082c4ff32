"""Scores from predictions: accuracy, macro F1, per-class precision / recall, confusion matrices.

Macro F1 averages the classes that occur in the truth or the predictions (scikit-learn's default set),
so a split without some class is not scored 0 for it.
"""

from __future__ import annotations

import numpy as np


def confusion(actual: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """(n, n) int64 counts: rows actual class, columns predicted class."""
    return np.bincount(actual * n + predicted, minlength=n * n).reshape(n, n).astype(np.int64)


def summarize(cm: np.ndarray, classes: list[str]) -> dict:
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1).astype(float), cm.sum(0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support > 0) | (predicted > 0)
    total = cm.sum()
    return {
        "rows": int(total),
        "accuracy": round(float(tp.sum() / total), 6) if total else 0.0,
        "macro_f1": round(float(f1[present].mean()), 6) if present.any() else 0.0,
        "per_class": {
            c: {
                "precision": round(float(precision[i]), 6),
                "recall": round(float(recall[i]), 6),
                "f1": round(float(f1[i]), 6),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
    }


def score(actual: np.ndarray, predicted: np.ndarray, sources: np.ndarray, source_names: list[str], classes: list[str]):
    """Overall scores plus one block per source; returns (scores, confusion matrix)."""
    n = len(classes)
    cm = confusion(actual, predicted, n)
    out = summarize(cm, classes)
    out["by_source"] = {}
    for code, name in enumerate(source_names):
        mask = sources == code
        if mask.any():
            s = summarize(confusion(actual[mask], predicted[mask], n), classes)
            out["by_source"][name] = {k: s[k] for k in ("rows", "accuracy", "macro_f1")}
    return out, cm
