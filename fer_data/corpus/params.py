"""The `corpus:` block of params.yaml: its schema, defaults and validation (one owner, one model).

Validated before any work (fer_data.params lists this model as the block's owner): a misspelt key
would silently keep its default, so unknown keys are refused (`extra="forbid"`), and every error
is one line naming the key path (`corpus.shards.rows: unknown key; known: ...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fer_data.reports.corpus import ReportParams

SPLITS = ("train", "val", "test")


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceParams(_Block):
    """`corpus.sources.<name>`: how one curated source enters the corpus."""

    include: bool = True
    #: Multiplies the rows' sample_weight (1.0: as many votes as any other source).
    weight: float = Field(1.0, gt=0)
    #: corpus: split by the corpus's ratios; official: keep the dataset's own train/val/test.
    split: Literal["corpus", "official"] = "corpus"


class SplitParams(_Block):
    ratios: dict[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
    seed: int = 0
    #: A leak group whose official splits disagree: drop its rows on the evaluation side, or move them to train.
    straddle: Literal["drop_eval", "move_to_train"] = "drop_eval"

    @field_validator("ratios")
    @classmethod
    def _shares(cls, ratios: dict[str, float]) -> dict[str, float]:
        if set(ratios) != set(SPLITS):
            raise ValueError(
                f"splits.ratios: needs exactly the keys {', '.join(SPLITS)}, got {', '.join(sorted(ratios))}"
            )
        if any(v < 0 for v in ratios.values()) or abs(sum(ratios.values()) - 1) > 1e-6:
            raise ValueError(f"splits.ratios: must be >= 0 and sum to 1 (got {ratios})")
        return ratios


class DuplicateParams(_Block):
    near: bool = True
    #: Which row of a duplicate group is kept: the highest value of this quality column.
    keep: Literal["face_size", "sharpness", "contrast", "det_score", "eye_distance"] = "face_size"
    #: label_conflict rows (a duplicate group whose labels disagree): keep the best row, or drop the group.
    label_conflicts: Literal["keep", "drop"] = "keep"
    #: Lowest correlation of two 16 px thumbnails (or one and the other's mirror image) to be compared further.
    #: Loose on purpose: copies of 48 px faces re-aligned by the curation correlate down to ~0.5, and the
    #: registration below, not this, keeps different people apart (BENCHMARKS.md "Corpus": 0.85 -> 0.6
    #: took FER2013's recall from 0.88 to 0.95 at the same precision, for ~2.3x the confirmation time).
    candidate_correlation: float = Field(0.6, gt=0, le=1)
    #: Largest Hamming distance of the 64-bit perceptual hashes (face or mirror image): a cheap first veto
    #: (copies: median 6; other faces of similar pose: median 22).
    max_hash_distance: int = Field(28, ge=0, le=64)
    #: Largest face-embedding distance, where both rows have one. Copies of large faces are < 0.36 apart;
    #: dlib's descriptor of a 48 px face moves more (FER2013 copies: 99.8 % < 0.55), other people >= 0.36.
    max_embedding_distance: float = Field(0.55, gt=0)
    #: Lowest block correlation after registering one face onto the other (copies >= 0.91, others <= 0.87 measured).
    min_registered_correlation: float = Field(0.9, gt=-1, le=1)
    #: The same for a pair whose labels differ: a label conflict needs the same image, not two moments of
    #: a face (CK+: a neutral frame and a subtle expression of one person reach 0.95).
    min_registered_correlation_labels_differ: float = Field(0.96, gt=-1, le=1)
    #: Nearest neighbours searched per face (and per mirrored face): room for several copies of one face
    #: plus the look-alikes that rank above a badly re-aligned copy.
    neighbours: int = Field(16, ge=1, le=256)


class IdentityParams(_Block):
    #: Cluster probable identities from the curated `embedding` column; off: subject ids only.
    cluster: bool = True
    #: Average-linkage stopping distance (root mean squared embedding distance between two clusters).
    max_distance: float = Field(0.5, gt=0)
    neighbours: int = Field(16, ge=1, le=256)


class ShardParams(_Block):
    target_rows: int = Field(20000, ge=1)
    target_mb: float = Field(128, gt=0)
    row_group_rows: int = Field(2048, ge=1)


class CorpusParams(_Block):
    sources: dict[str, SourceParams] = {}
    splits: SplitParams = SplitParams()
    duplicates: DuplicateParams = DuplicateParams()
    identities: IdentityParams = IdentityParams()
    shards: ShardParams = ShardParams()
    #: Inverse-frequency class weights per split as sample_weight (off: 1.0, times the source weight).
    class_weights: bool = True
    #: The steward report's sizes (fer_data.reports.corpus owns them).
    report: ReportParams = ReportParams()

    def source(self, name: str) -> SourceParams:
        return self.sources.get(name) or SourceParams()


def resolve(raw: Mapping[str, Any] | None) -> CorpusParams:
    """The validated `corpus:` block of a params mapping; ParamsError (a ValueError) naming the key path."""
    from fer_data.params import validated

    return validated(CorpusParams, (raw or {}).get("corpus"), "corpus", None)


def as_dict(p: CorpusParams) -> dict[str, Any]:
    """The block as applied (defaults filled), for the manifest."""
    return p.model_dump(mode="json")
