"""The `drift:` block of params.yaml, validated before any work (one-line messages naming the key path).

Every key is documented in params.yaml; the defaults here are what a missing key means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: Quality columns of the curated table compared by KS + PSI (fer_data.schema documents each).
DEFAULT_FEATURES = ("brightness", "contrast", "sharpness", "face_size", "roll_deg", "yaw", "det_score")


class _Block(BaseModel):
    # A misspelt key would silently keep its default: refuse it.
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingConfig(_Block):
    enabled: bool = True
    method: Literal["auto", "exact", "random_features"] = "auto"
    exact_max_rows: int = Field(20000, ge=2)
    random_features: int = Field(2048, ge=64)
    permutations: int = Field(100, ge=10)
    chunk_rows: int = Field(4096, ge=64)
    min_rows: int = Field(10, ge=2)


class ProfileConfig(_Block):
    splits: list[str] = ["train"]
    sample_size: int = Field(20000, ge=100)
    embedding_sample: int = Field(5000, ge=10)
    faces_sample: int = Field(512, ge=0)
    psi_bins: int = Field(10, ge=2, le=100)
    display_bins: int = Field(30, ge=5, le=200)


class IngestConfig(_Block):
    labels_csv: str = "labels.csv"
    video_stride: int = Field(10, ge=1)
    max_frames_per_video: int = Field(50, ge=0)
    expected_face_fraction: float = Field(0.5, gt=0, le=1)
    precropped: bool = False
    class_map: dict[str, str] = {}


class ScheduleConfig(_Block):
    cron: str = "30 6 * * *"
    timezone: str = "UTC"
    active: bool = True
    inbox: str = "data/inbox"
    reference: str = "data/corpus"
    out: str = "reports/drift"
    settle_seconds: float = Field(60.0, ge=0)
    claim_timeout_s: float = Field(3600.0, gt=0)


class DriftConfig(_Block):
    alpha: float = Field(0.05, gt=0, lt=1)
    correction: Literal["holm", "bonferroni"] = "holm"
    features: list[str] = list(DEFAULT_FEATURES)
    feature_min_psi: float = Field(0.05, ge=0)
    label_min_psi: float = Field(0.02, ge=0)
    min_labelled: int = Field(20, ge=1)
    min_face_found_rate: float = Field(0.8, ge=0, le=1)
    model: str | None = None
    seed: int = 0
    embedding: EmbeddingConfig = EmbeddingConfig()
    profile: ProfileConfig = ProfileConfig()
    ingest: IngestConfig = IngestConfig()
    schedule: ScheduleConfig = ScheduleConfig()


def parse(raw: Mapping[str, Any] | None) -> DriftConfig:
    """The `drift:` block of a params mapping (absent: defaults); ValueError names the first bad key path."""
    block = (raw or {}).get("drift") or {}
    try:
        cfg = DriftConfig.model_validate(block)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(["drift", *map(str, err["loc"])])
        raise ValueError(f"{path}: {err['msg']}") from None
    _check_features(cfg.features)
    return cfg


def _check_features(features: list[str]) -> None:
    from fer_data.schema import CURATED

    numeric = {f.name for f in CURATED if f.type in (pa.float32(), pa.float64(), pa.int16(), pa.int32())}
    unknown = [f for f in features if f not in numeric]
    if unknown:
        raise ValueError(f"drift.features: {unknown} are not numeric curated columns ({', '.join(sorted(numeric))})")
