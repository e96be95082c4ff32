"""The `drift:` block of params.yaml, validated before any work (one-line messages naming the key path).

Registered as the block's owner in fer_data.params.BLOCK_OWNERS, so `params.resolve` checks it
with the rest of the file; every key is documented here and in params.yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import field_validator

from fer_data.params import Block, Bool, Float, Int, Str, param, validated

#: Quality columns of the curated table compared by KS + PSI (fer_data.schema documents each).
DEFAULT_FEATURES = ("brightness", "contrast", "sharpness", "face_size", "roll_deg", "yaw", "det_score")


class EmbeddingConfig(Block):
    enabled: Bool = param(True, "true or false", "test the face-embedding distribution (MMD)")
    method: Literal["auto", "exact", "random_features"] = param(
        "auto", "auto, exact or random_features", "exact kernel (quadratic) or random Fourier features (linear)"
    )
    exact_max_rows: Int = param(20000, "an integer >= 2", "auto: exact up to this many rows in all", ge=2)
    random_features: Int = param(2048, "an integer >= 64", "random Fourier features of the kernel", ge=64)
    permutations: Int = param(100, "an integer >= 10", "permutations for the p-value", ge=10)
    chunk_rows: Int = param(4096, "an integer >= 64", "rows per kernel block (memory bound)", ge=64)
    min_rows: Int = param(10, "an integer >= 2", "fewer embeddings on either side: skipped", ge=2)


class ProfileConfig(Block):
    splits: list[Str] = param(["train"], "a list of corpus splits", "the corpus splits that are the reference")
    sample_size: Int = param(20000, "an integer >= 100", "values kept per feature (KS test)", ge=100)
    embedding_sample: Int = param(5000, "an integer >= 10", "embeddings kept (MMD test)", ge=10)
    faces_sample: Int = param(512, "an integer >= 0", "aligned faces kept (model predictions, report)", ge=0)
    psi_bins: Int = param(10, "an integer in 2..100", "PSI bins at the reference's quantiles", ge=2, le=100)
    display_bins: Int = param(30, "an integer in 5..200", "report histogram bins", ge=5, le=200)


class IngestConfig(Block):
    labels_csv: Str = param("labels.csv", "a file name", "file,label CSV in a batch folder (wins over class folders)")
    video_stride: Int = param(10, "an integer >= 1", "every n-th video frame", ge=1)
    max_frames_per_video: Int = param(50, "an integer >= 0", "frames kept per video (0: all)", ge=0)
    expected_face_fraction: Float = param(0.5, "a number in (0, 1]", "face width / image side", gt=0, le=1)
    precropped: Bool = param(False, "true or false", "the app sends tight face crops (no detection)")
    class_map: dict[Str, Str] = param({}, "a mapping label name -> canonical class", "extra label names")


class ScheduleConfig(Block):
    cron: Str = param("30 6 * * *", "a cron expression", "when the drift flow runs")
    timezone: Str = param("UTC", "a time zone name", "time zone of the cron expression")
    active: Bool = param(True, "true or false", "false registers the schedule paused")
    inbox: Str = param("data/inbox", "a folder path", "one sub-folder or .parquet file per batch")
    reference: Str = param("data/corpus", "a corpus folder or a .npz profile", "the training data")
    out: Str = param("reports/drift", "a folder path", "reports, index page and the ledger")
    settle_seconds: Float = param(60.0, "a number >= 0", "a batch unchanged this long is complete", ge=0)
    claim_timeout_s: Float = param(3600.0, "a number > 0", "an older claim is taken over", gt=0)


class DriftConfig(Block):
    alpha: Float = param(0.05, "a number in (0, 1)", "false-alarm rate of the whole battery", gt=0, lt=1)
    correction: Literal["holm", "bonferroni"] = param("holm", "holm or bonferroni", "multiple-testing correction")
    features: list[Str] = param(list(DEFAULT_FEATURES), "a list of numeric curated columns", "KS + PSI features")
    feature_min_psi: Float = param(0.0, "a number >= 0", "a feature shift must also reach this PSI", ge=0)
    label_min_psi: Float = param(0.0, "a number >= 0", "a class-mix shift must also reach this PSI", ge=0)
    min_labelled: Int = param(20, "an integer >= 1", "fewer labelled batch rows: class-mix check skipped", ge=1)
    min_face_found_rate: Float = param(0.8, "a number in 0..1", "share of inputs with a face found", ge=0, le=1)
    model: Str | None = param(None, "null or a model file", "adds the predicted-class shift check")
    seed: Int = param(0, "an integer", "profile sampling and permutations")
    embedding: EmbeddingConfig = param(EmbeddingConfig(), "a mapping", "the embedding-shift test")
    profile: ProfileConfig = param(ProfileConfig(), "a mapping", "the reference profile")
    ingest: IngestConfig = param(IngestConfig(), "a mapping", "how a batch is read")
    schedule: ScheduleConfig = param(ScheduleConfig(), "a mapping", "the scheduled drift flow")

    @field_validator("features")
    @classmethod
    def _numeric_columns(cls, features: list[str]) -> list[str]:
        import pyarrow as pa

        from fer_data.schema import CURATED

        numeric = {f.name for f in CURATED if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)}
        unknown = [f for f in features if f not in numeric]
        if unknown:
            raise ValueError(f"features: {unknown} are not numeric curated columns ({', '.join(sorted(numeric))})")
        return features


def parse(raw: Mapping[str, Any] | None) -> DriftConfig:
    """The `drift:` block of a params mapping (absent: defaults); ParamsError (a ValueError) names the bad key."""
    return validated(DriftConfig, (raw or {}).get("drift"), "drift", None)
