"""params.yaml: the single file a user edits to point at datasets and tune the curation.

Defaults live here so a partial params.yaml (or none, for library use) still works, and so
DVC can track exactly the keys each stage reads.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fer_data.labels import TargetSet, target_set

DEFAULTS: dict[str, Any] = {
    "labels": {"target_set": "fer2013_7", "keep_unlabelled": False},
    "faces": {
        "detector": "hog",
        # Detection runs on a copy rescaled so that the expected face is about this wide:
        # dlib's HOG window is 80 px, so ~100 px faces are found reliably without the cost
        # of always upsampling (4x the time) or searching full-resolution frames.
        "target_face_px": 80,
        "max_upscale": 4.0,
        "hog_threshold": 0.0,
        "cnn_threshold": 0.0,
        "retry_upsampled": True,
        # What to do with a pre-cropped image whose landmark fit fails the sanity check.
        "precropped_fallback": "keep_unaligned",  # or "reject"
        # Landmark sanity check: inter-ocular distance as a fraction of the face box width.
        "min_eye_distance_ratio": 0.22,
        "max_eye_distance_ratio": 0.65,
        "max_roll_deg": 45.0,
        # RMS distance of the fit from a face shape, in inter-ocular distances (see faces.quality).
        "max_shape_residual": 0.22,
        # dlib's 128-d face descriptor of every aligned face (the corpus clusters identities with it).
        "embeddings": True,
    },
    "align": {
        "size": 48,
        # Eye centres in the aligned image, as fractions of its side: (x, y) of the eye on the
        # image's left (the person's right eye) and of the eye on the image's right.
        "eye_left": [0.30, 0.36],
        "eye_right": [0.70, 0.36],
        "extra_size": 0,  # a second, larger aligned image (e.g. 112); 0 = off
    },
    # workers: processes for face work (0 = all cores); shard_size: most items per shard
    # (the unit of parallel work and of output part files); chunk_size: rows per write.
    "run": {"workers": 0, "shard_size": 2048, "chunk_size": 256},
    "sources": {},
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; override wins. Lists are replaced, not merged."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class FaceParams:
    detector: str = "hog"
    target_face_px: int = 80
    max_upscale: float = 4.0
    hog_threshold: float = 0.0
    cnn_threshold: float = 0.0
    retry_upsampled: bool = True
    precropped_fallback: str = "keep_unaligned"
    min_eye_distance_ratio: float = 0.22
    max_eye_distance_ratio: float = 0.65
    max_roll_deg: float = 45.0
    max_shape_residual: float = 0.22
    embeddings: bool = True


@dataclass(frozen=True)
class AlignParams:
    size: int = 48
    eye_left: tuple[float, float] = (0.30, 0.36)
    eye_right: tuple[float, float] = (0.70, 0.36)
    extra_size: int = 0


@dataclass(frozen=True)
class RunParams:
    workers: int = 0
    shard_size: int = 2048
    chunk_size: int = 256

    def worker_count(self) -> int:
        import os

        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


@dataclass(frozen=True)
class Params:
    """Resolved parameters for one curation run."""

    target: TargetSet
    keep_unlabelled: bool
    faces: FaceParams
    align: AlignParams
    run: RunParams
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def source(self, name: str) -> dict[str, Any]:
        """The `sources.<name>` block (empty when absent)."""
        return dict(self.sources.get(name) or {})


def resolve(raw: Mapping[str, Any] | None = None) -> Params:
    """Turn a (partial) params mapping into validated Params."""
    merged = deep_merge(DEFAULTS, raw or {})
    faces = FaceParams(**merged["faces"])
    if faces.precropped_fallback not in ("keep_unaligned", "reject"):
        raise ValueError("faces.precropped_fallback must be 'keep_unaligned' or 'reject'")
    if not isinstance(faces.embeddings, bool):
        raise ValueError(f"faces.embeddings must be true or false, got {faces.embeddings!r}")
    a = merged["align"]
    align = AlignParams(
        size=int(a["size"]),
        eye_left=tuple(map(float, a["eye_left"])),
        eye_right=tuple(map(float, a["eye_right"])),
        extra_size=int(a["extra_size"]),
    )
    if not (align.eye_left[0] < align.eye_right[0]):
        raise ValueError("align.eye_left must lie left of align.eye_right")
    return Params(
        target=target_set(merged["labels"]["target_set"]),
        keep_unlabelled=bool(merged["labels"]["keep_unlabelled"]),
        faces=faces,
        align=align,
        run=RunParams(**merged["run"]),
        sources=dict(merged.get("sources") or {}),
    )


def read_raw(path: str | Path | None) -> dict[str, Any]:
    """params.yaml as written, for the blocks other modules read themselves (orchestration, validation, schedules)."""
    if path is None:
        return {}
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def load(path: str | Path | None) -> Params:
    """Read params.yaml (missing path -> defaults)."""
    return resolve(read_raw(path))
