"""The reference profile: a training corpus summarised once, so a drift check never re-reads it.

A profile holds, per quality feature, summary numbers, the PSI bins (edges at the corpus's
quantiles and the corpus's share per bin), display histogram counts, and a uniform sample of
values for the KS test; a uniform sample of face embeddings (the MMD test); a uniform sample
of aligned faces with their labels (a model's predicted-class mix on the reference is computed
from them at check time, so the profile does not depend on a model); and the class mix.

The reference may be a corpus (`fer-data corpus` output: manifest.json + shards; `profile.splits`
of it, train by default), one curate output folder (curated.parquet/), or a Parquet file or
folder of curated rows. Scalar columns are read whole (a few numbers a row); embeddings and
images only for the sampled rows, streamed batch by batch.

Saved as one `.npz` (arrays plus a JSON header; no pickles): `fer-data drift --profile`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from fer_data import __version__
from fer_data.drift import stats
from fer_data.drift.config import ProfileConfig

PROFILE_KIND = "fer-data-drift-profile"
PROFILE_VERSION = "1"
#: Display histograms span the reference's 0.5 %..99.5 % range: a few outliers do not squash every bar.
DISPLAY_QUANTILES = (0.005, 0.995)
SUMMARY_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass
class FeatureProfile:
    """One quality feature of the reference."""

    name: str
    n: int
    n_null: int
    mean: float
    std: float
    quantiles: dict[str, float]
    psi_edges: np.ndarray  # inner edges; bins are open-ended at both ends
    psi_shares: np.ndarray
    display_edges: np.ndarray
    display_counts: np.ndarray
    sample: np.ndarray  # float64, at most profile.sample_size values drawn without replacement

    def header(self) -> dict[str, Any]:
        return {"n": self.n, "n_null": self.n_null, "mean": self.mean, "std": self.std, "quantiles": self.quantiles}


@dataclass
class Profile:
    """Everything a drift check needs to know about the reference."""

    reference: str
    rows: int
    classes: list[str]  # label_index order (manifest `classes` / labels.target_set)
    class_counts: dict[str, int]
    features: dict[str, FeatureProfile]
    embeddings: np.ndarray | None = None  # (k, 128) float32
    faces: np.ndarray | None = None  # (k, h, w) uint8 aligned faces
    face_labels: list[str | None] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write the profile atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        head = {
            "kind": PROFILE_KIND,
            "version": PROFILE_VERSION,
            "reference": self.reference,
            "rows": self.rows,
            "classes": self.classes,
            "class_counts": self.class_counts,
            "features": {k: f.header() for k, f in self.features.items()},
            "face_labels": self.face_labels,
            "meta": self.meta,
        }
        arrays = {"header": np.frombuffer(json.dumps(head).encode(), np.uint8)}
        for k, f in self.features.items():
            for part in ("psi_edges", "psi_shares", "display_edges", "display_counts", "sample"):
                arrays[f"{k}/{part}"] = getattr(f, part)
        if self.embeddings is not None:
            arrays["embeddings"] = self.embeddings
        if self.faces is not None:
            arrays["faces"] = self.faces
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        with np.load(path, allow_pickle=False) as z:
            head = json.loads(z["header"].tobytes())
            if head.get("kind") != PROFILE_KIND:
                raise ValueError(f"{path} is not a drift profile (kind {head.get('kind')!r})")
            feats = {
                k: FeatureProfile(
                    k,
                    **h,
                    **{
                        p: z[f"{k}/{p}"]
                        for p in ("psi_edges", "psi_shares", "display_edges", "display_counts", "sample")
                    },
                )
                for k, h in head["features"].items()
            }
            return cls(
                head["reference"],
                head["rows"],
                head["classes"],
                head["class_counts"],
                feats,
                z.get("embeddings"),
                z.get("faces"),
                head["face_labels"],
                head["meta"],
            )


def is_profile(path: str | Path) -> bool:
    return Path(path).is_file() and Path(path).suffix == ".npz"


def reference_files(path: str | Path, splits: Sequence[str]) -> tuple[list[Path], list[str] | None, dict]:
    """Parquet files of a reference, its class order when it declares one, and its manifest (or {})."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        files = [path / s["path"] for s in manifest["shards"] if s["split"] in splits]
        if not files:
            raise ValueError(f"{path}: the corpus has no shards of split(s) {list(splits)} (drift.profile.splits)")
        return files, list(manifest["classes"]), manifest
    table_dir = path / "curated.parquet" if (path / "curated.parquet").is_dir() else path
    files = sorted(table_dir.rglob("*.parquet")) if table_dir.is_dir() else [table_dir]
    if not files or not files[0].exists():
        raise FileNotFoundError(f"{path}: neither a corpus (manifest.json), a curate output nor Parquet rows")
    return files, None, {}


def build(
    reference: str | Path,
    cfg: ProfileConfig,
    features: Sequence[str],
    classes: Sequence[str],
    seed: int = 0,
) -> Profile:
    """Profile a reference corpus (see the module docstring for what it may be)."""
    files, declared, manifest = reference_files(reference, cfg.splits)
    classes = list(declared or classes)
    data = ds.dataset([str(f) for f in files], format="parquet")
    names = set(data.schema.names)
    rng = np.random.default_rng(seed)
    scalars = data.to_table(columns=[c for c in (*features, "label") if c in names])
    rows = scalars.num_rows
    if rows == 0:
        raise ValueError(f"{reference}: the reference has no rows")
    labels = scalars.column("label").to_pylist() if "label" in names else []
    counts = {c: 0 for c in classes}
    for lab in labels:
        if lab is not None:
            counts[lab] = counts.get(lab, 0) + 1
    feats = {f: profile_feature(f, _values(scalars, f), cfg, rng) for f in features}
    profile = Profile(str(reference), rows, classes, counts, feats, meta=_meta(manifest, cfg))
    if "embedding" in names:
        emb = pick_rows(data, ["embedding"], _choose(rng, rows, cfg.embedding_sample)).column("embedding")
        vectors = [v for v in emb.to_pylist() if v is not None]
        profile.embeddings = np.asarray(vectors, np.float32) if vectors else None
    if cfg.faces_sample:
        faces = pick_rows(data, ["image", "width", "height", "label"], _choose(rng, rows, cfg.faces_sample))
        profile.faces = faces_array(faces)
        profile.face_labels = faces.column("label").to_pylist()
    return profile


def _meta(manifest: dict, cfg: ProfileConfig) -> dict[str, Any]:
    return {
        "created_by": f"fer-data {__version__}",
        "corpus_version": manifest.get("corpus_version"),
        "target_set": manifest.get("target_set"),
        "splits": list(cfg.splits) if manifest else None,
        "profile": cfg.model_dump(),
    }


def _values(table: pa.Table, column: str) -> np.ndarray | None:
    if column not in table.column_names:
        return None
    return table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)


def profile_feature(name: str, values: np.ndarray | None, cfg: ProfileConfig, rng: np.random.Generator):
    """Summaries, PSI bins, display histogram and KS sample of one feature (nulls counted, then dropped)."""
    values = np.empty(0) if values is None else values
    present = values[~np.isnan(values)]
    n_null = len(values) - len(present)
    if len(present) == 0:
        empty = np.empty(0)
        return FeatureProfile(name, 0, n_null, float("nan"), float("nan"), {}, empty, np.ones(1), empty, empty, empty)
    edges = stats.quantile_edges(present, cfg.psi_bins)
    lo, hi = np.quantile(present, DISPLAY_QUANTILES)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    display_edges = np.linspace(lo, hi, cfg.display_bins + 1)
    take = min(cfg.sample_size, len(present))
    return FeatureProfile(
        name,
        len(present),
        n_null,
        float(present.mean()),
        float(present.std()),
        {str(q): float(v) for q, v in zip(SUMMARY_QUANTILES, np.quantile(present, SUMMARY_QUANTILES), strict=True)},
        edges,
        stats.bin_shares(present, edges),
        display_edges,
        display_histogram(present, display_edges),
        rng.choice(present, take, replace=False),
    )


def display_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts on the display bins, values outside the range counted in the end bins."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0]


def _choose(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    return np.sort(rng.choice(rows, min(k, rows), replace=False))


def pick_rows(data: ds.Dataset, columns: list[str], indices: np.ndarray) -> pa.Table:
    """The rows at INDICES (sorted, in dataset order), streamed batch by batch: only those rows are kept."""
    parts, start = [], 0
    for batch in data.to_batches(columns=columns):
        end = start + batch.num_rows
        lo, hi = np.searchsorted(indices, [start, end])
        if hi > lo:
            parts.append(pa.Table.from_batches([batch]).take(pa.array(indices[lo:hi] - start)))
        start = end
    if not parts:
        return data.schema.empty_table().select(columns)
    return pa.concat_tables(parts)


def faces_array(rows: pa.Table | list[dict]) -> np.ndarray | None:
    """(k, h, w) uint8 from the `image` bytes of rows (all of one size: a table is curated at one align.size)."""
    rows = rows.select(["image", "width", "height"]).to_pylist() if isinstance(rows, pa.Table) else rows
    if not rows:
        return None
    return np.stack([np.frombuffer(r["image"], np.uint8).reshape(r["height"], r["width"]) for r in rows])
