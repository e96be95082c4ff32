"""The `review:` block of params.yaml: label review's schema, defaults and validation (one owner, one model).

Its `oof:` sub-block (how the out-of-fold models train) is defined once, in train.oof_params.OofParams
(train/ runs where pydantic may be absent); it is checked here through that definition, so
`fer-data review`, `python -m train oof` and `dvc repro` refuse the same values with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ReviewParams(BaseModel):
    """Every key of params.yaml `review:` (documented there)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Stewards' decisions (sample_id, action, new_label, who, why); the corpus build applies them. null: none.
    decisions: str | None = None
    #: Out-of-fold training (train.oof_params.OofParams: folds, model, epochs, batch_size, lr, ...).
    oof: dict[str, Any] = {}
    #: Which rows are flagged: confident learning's pruning rule.
    filter_by: Literal["prune_by_noise_rate", "confident_learning", "both"] = "prune_by_noise_rate"
    #: The order of the review list: lowest self-confidence, or lowest normalised margin, first.
    rank_by: Literal["self_confidence", "normalized_margin"] = "self_confidence"
    #: A face is ambiguous when its predicted distribution's normalised entropy is at least this (1: uniform) ...
    ambiguous_entropy: float = Field(0.85, gt=0, le=1)
    #: ... or when its crowd votes (FER+) give the top class less than this share.
    ambiguous_vote_share: float = Field(0.5, gt=0, le=1)
    #: A flagged face is suggested "relabel" when the model gives another class at least this; else "drop".
    relabel_min_prob: float = Field(0.5, gt=0, le=1)
    #: Faces shown on the review page (flagged first, by rank); the parquet file lists every row.
    max_faces: int = Field(60, ge=1, le=5000)
    #: Longer side of the original images embedded in the page.
    thumb_px: int = Field(96, ge=32, le=512)

    @field_validator("oof")
    @classmethod
    def _oof(cls, value: dict[str, Any]) -> dict[str, Any]:
        from train.oof_params import oof_params
        from train.params import ParamsError as TrainParamsError

        try:
            oof_params(value, "oof")
        except TrainParamsError as exc:  # "params.yaml: oof.epochs: must be ..." -> the key path from the block down
            raise ValueError(str(exc).split(": ", 1)[1]) from None
        return value


def resolve(raw: Mapping[str, Any] | None) -> ReviewParams:
    """The validated `review:` block of a params mapping; ValueError with one line naming the key path."""
    from fer_data import params as params_mod

    try:
        return params_mod.validated(ReviewParams, (raw or {}).get("review"), "review", None)
    except params_mod.ParamsError as exc:
        raise ValueError(str(exc)) from None


def oof(p: ReviewParams):
    """train.oof_params.OofParams of the block."""
    from train.oof_params import oof_params

    return oof_params(p.oof, "review.oof")
