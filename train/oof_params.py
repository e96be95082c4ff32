"""The out-of-fold settings (params.yaml `review.oof`): plain dataclasses, no torch, so params
validation (fer_data.review.params) can check them without importing a deep-learning stack."""

from __future__ import annotations

from dataclasses import dataclass, field

from train.params import Augment, _one_of, _positive, build, rule

EMBEDDING_MODEL = "embedding_logreg"
HOG_MODEL = "hog_logreg"
LANDMARK_MODEL = "landmark_logreg"
LANDMARK_HOG_MODEL = "landmark_hog_logreg"
#: The models that are logistic regressions on fixed features (train.oof.LOGREG_MEMBERS); the first is the default.
LOGREG_MODELS = (LANDMARK_HOG_MODEL, HOG_MODEL, LANDMARK_MODEL, EMBEDDING_MODEL)


@dataclass(frozen=True)
class OofParams:
    """The out-of-fold training settings (params.yaml `review.oof`, documented there)."""

    folds: int = rule(5, lambda v: v >= 2, "an integer >= 2")
    model: str = _one_of(*LOGREG_MODELS, "five_layer", "baseline", "resnet18")
    epochs: int = rule(10, _positive, "an integer > 0")
    batch_size: int = rule(64, lambda v: v >= 2, "an integer >= 2")
    lr: float = rule(0.05, _positive, "a number > 0")
    momentum: float = rule(0.9, lambda v: 0 <= v < 1, "a number in [0, 1)")
    weight_decay: float = rule(5e-4, lambda v: v >= 0, "a number >= 0")
    augment: Augment = field(default_factory=Augment)
    tta_flip: bool = True
    #: Fixed-feature models: raw features, features centred on each person's mean, or both averaged.
    person_features: str = _one_of("both", "raw", "centred")
    seed: int = 0
    device: str = _one_of("auto", "cpu", "cuda")
    cache_dir: str | None = None


def oof_params(raw: dict | None, where: str = "review.oof") -> OofParams:
    """OofParams from a mapping; train.params.ParamsError (one line, naming WHERE.key) when a value is wrong."""
    return build(OofParams, raw, where)
