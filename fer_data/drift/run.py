"""One drift check, start to end: what `fer-data drift` and the scheduled flow call.

params validated -> reference profile (loaded, or built from the corpus) -> batch curated
-> battery -> OUT/drift.json (DVC metrics) and OUT/index.html (the report)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as ds

from fer_data import params as params_mod
from fer_data.drift import checks as checks_mod
from fer_data.drift import config, ingest, profile, report
from fer_data.drift import model as model_mod
from fer_data.drift.profile import Profile

log = logging.getLogger("fer_data.drift")

DRIFT_JSON = "drift.json"


def reference_profile(reference: str | Path, cfg: config.DriftConfig, params: params_mod.Params) -> Profile:
    """A saved profile (.npz) as it is, or one built from a corpus / curated rows now."""
    if profile.is_profile(reference):
        return Profile.load(reference)
    return profile.build(reference, cfg.profile, cfg.features, params.target.classes, cfg.seed)


def save_profile(corpus: str | Path, out: str | Path, raw: Mapping[str, Any]) -> Path:
    """`fer-data drift --profile CORPUS --out FILE`."""
    cfg = config.parse(raw)
    return reference_profile(corpus, cfg, params_mod.resolve(raw)).save(out)


def check_batch(
    reference: str | Path | Profile,
    batch: str | Path,
    out_dir: str | Path,
    raw: Mapping[str, Any] | None = None,
    model: str | Path | model_mod.Model | None = None,
    curate: ingest.Curate | None = None,
) -> dict[str, Any]:
    """Check one batch against the reference; writes OUT/drift.json and OUT/index.html, returns drift.json's content.

    CURATE runs the batch's face preprocessing (default: the engine's local process pool; see ingest).
    """
    raw = raw or {}
    cfg = config.parse(raw)  # every parameter is checked before any work
    params = params_mod.resolve(raw)
    model = model or cfg.model
    if isinstance(model, str | Path) and not Path(model).is_file():
        raise FileNotFoundError(f"drift.model: {model} does not exist")
    out = Path(out_dir)
    prof = reference if isinstance(reference, Profile) else reference_profile(reference, cfg, params)
    b = ingest.ingest(batch, out, params, cfg, curate or ingest.run_curate)
    predicted = _predicted(model, prof, b) if model is not None else None
    results = checks_mod.battery(prof, b, cfg, predicted)
    doc = checks_mod.summary(results) | {
        "batch": _batch_info(b),
        "reference": {"path": prof.reference, "rows": prof.rows, "classes": prof.classes},
        "alpha": cfg.alpha,
        "correction": cfg.correction,
    }
    out.mkdir(parents=True, exist_ok=True)
    _write(out / DRIFT_JSON, json.dumps(doc, indent=2, default=_json_default) + "\n")
    _write(out / report.REPORT_FILE, report.render(prof, b, results, doc))
    log.info("drift %s: %s (%s)", batch, doc["verdict"], ", ".join(doc["failed_checks"]) or "every check passed")
    return doc


def _predicted(model, prof: Profile, b: ingest.Batch) -> tuple[np.ndarray, np.ndarray] | None:
    """Predicted-class counts on the reference's face sample and on every batch face."""
    m = model_mod.load(model) if isinstance(model, str | Path) else model
    if prof.faces is None or not len(prof.faces):
        return None
    ref = model_mod.predicted_counts(m, [prof.faces], prof.classes)
    return ref, model_mod.predicted_counts(m, iter_faces(b.table), prof.classes)


def iter_faces(table: Path, rows: int = model_mod.PREDICT_BATCH) -> Iterator[np.ndarray]:
    """The batch's aligned faces, a few hundred at a time."""
    data = ds.dataset(str(table), format="parquet")
    for batch in data.to_batches(columns=["image", "width", "height"], batch_size=rows):
        faces = profile.faces_array(batch.to_pylist())
        if faces is not None:
            yield faces


def _batch_info(b: ingest.Batch) -> dict[str, Any]:
    return {
        "path": b.path,
        "rows": b.rows,
        "labelled": sum(lab is not None for lab in b.labels),
        "read": b.read,
        "face_found_rate": b.face_found_rate,
        "rejected_by_reason": b.rejected_by_reason,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value)}")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
