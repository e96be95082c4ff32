"""The one place that defines the label taxonomy and every dataset's label mapping.

Every dataset numbers its classes differently (FER2013's 0 is anger, CK+'s 0 is neutral,
RAF-DB starts at 1 with surprise). Mixing them up silently poisons a training set, so
each source maps its native codes through a lookup table defined here and nowhere else.
Tables are plain dicts: a code that is not a key is an unknown label, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NEUTRAL = "neutral"
ANGER = "anger"
CONTEMPT = "contempt"
DISGUST = "disgust"
FEAR = "fear"
HAPPINESS = "happiness"
SADNESS = "sadness"
SURPRISE = "surprise"

#: Canonical classes, in a fixed order (the "all8" target set uses it).
CANONICAL: tuple[str, ...] = (NEUTRAL, ANGER, CONTEMPT, DISGUST, FEAR, HAPPINESS, SADNESS, SURPRISE)

#: Native labels that are real annotations but not an emotion class (AffectNet "none",
#: Aff-Wild2 "Other", ...). They are rejected with their own reason, not as "unknown".
NOT_AN_EMOTION = "not_an_emotion"

#: Target class sets selectable in params.yaml (`labels.target_set`). Order = class index.
TARGET_SETS: dict[str, tuple[str, ...]] = {
    # FER2013's own 7 classes in its order: 0 angry ... 6 neutral.
    "fer2013_7": (ANGER, DISGUST, FEAR, HAPPINESS, SADNESS, SURPRISE, NEUTRAL),
    # Ekman's six basic emotions, no neutral.
    "basic6": (ANGER, DISGUST, FEAR, HAPPINESS, SADNESS, SURPRISE),
    # The 7 basic emotions plus neutral (FER+, AffectNet-8, CK+).
    "all8": CANONICAL,
}

# --- native code -> canonical label, one table per dataset ---------------------------

FER2013 = {0: ANGER, 1: DISGUST, 2: FEAR, 3: HAPPINESS, 4: SADNESS, 5: SURPRISE, 6: NEUTRAL}

#: Folder names of the Kaggle image-folder variant of FER2013 (and of CK+48-style trees).
FER2013_FOLDERS = {
    "angry": ANGER,
    "disgust": DISGUST,
    "fear": FEAR,
    "happy": HAPPINESS,
    "sad": SADNESS,
    "surprise": SURPRISE,
    "neutral": NEUTRAL,
}

JAFFE = {"AN": ANGER, "DI": DISGUST, "FE": FEAR, "HA": HAPPINESS, "NE": NEUTRAL, "SA": SADNESS, "SU": SURPRISE}

CKPLUS = {0: NEUTRAL, 1: ANGER, 2: CONTEMPT, 3: DISGUST, 4: FEAR, 5: HAPPINESS, 6: SADNESS, 7: SURPRISE}

#: TFEID file-name expression codes (last `_` token of the stem starts with one of these).
TFEID_CODES = {"ng": NEUTRAL, "ag": ANGER, "dg": DISGUST, "fg": FEAR, "hg": HAPPINESS, "sg": SADNESS, "pg": SURPRISE}

#: Aff-Wild2 / ABAW expression class names as written on the annotation files' first line.
AFFWILD2 = {
    "Neutral": NEUTRAL,
    "Anger": ANGER,
    "Disgust": DISGUST,
    "Fear": FEAR,
    "Happiness": HAPPINESS,
    "Sadness": SADNESS,
    "Surprise": SURPRISE,
    "Other": NOT_AN_EMOTION,
}

#: FER+ vote columns, in the order they appear in fer2013new.csv / label.csv.
FERPLUS_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
FERPLUS = {
    "neutral": NEUTRAL,
    "happiness": HAPPINESS,
    "surprise": SURPRISE,
    "sadness": SADNESS,
    "anger": ANGER,
    "disgust": DISGUST,
    "fear": FEAR,
    "contempt": CONTEMPT,
    "unknown": NOT_AN_EMOTION,
    "NF": NOT_AN_EMOTION,
}

RAFDB = {1: SURPRISE, 2: FEAR, 3: DISGUST, 4: HAPPINESS, 5: SADNESS, 6: ANGER, 7: NEUTRAL}

AFFECTNET = {
    0: NEUTRAL,
    1: HAPPINESS,
    2: SADNESS,
    3: SURPRISE,
    4: FEAR,
    5: DISGUST,
    6: ANGER,
    7: CONTEMPT,
    8: NOT_AN_EMOTION,
    9: NOT_AN_EMOTION,
    10: NOT_AN_EMOTION,
}

#: Common English class-folder names (a team's own data, CK+48, web-app exports).
#: params.yaml can add or override names per source (`class_map`).
FOLDER_NAMES = {
    **{c: c for c in CANONICAL},
    **FER2013_FOLDERS,
    "angry": ANGER,
    "anger": ANGER,
    "mad": ANGER,
    "disgusted": DISGUST,
    "fearful": FEAR,
    "scared": FEAR,
    "afraid": FEAR,
    "happy": HAPPINESS,
    "joy": HAPPINESS,
    "smile": HAPPINESS,
    "sad": SADNESS,
    "surprised": SURPRISE,
    "calm": NEUTRAL,
    "contemptuous": CONTEMPT,
}


class UnknownLabel(ValueError):
    """A native label that is not in the dataset's lookup table."""


def to_canonical(table: Mapping, native: object) -> str:
    """Look a native code up; raise UnknownLabel (never guess) when it is not in the table."""
    try:
        return table[native]
    except (KeyError, TypeError):
        raise UnknownLabel(f"unknown label {native!r}") from None


def folder_table(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Folder-name table (case-insensitive keys) with the params' overrides applied."""
    table = {k.lower(): v for k, v in FOLDER_NAMES.items()}
    for name, label in (overrides or {}).items():
        if label not in CANONICAL and label != NOT_AN_EMOTION:
            raise ValueError(f"class_map maps {name!r} to {label!r}, which is not one of {CANONICAL}")
        table[str(name).lower()] = label
    return table


@dataclass(frozen=True)
class TargetSet:
    """The classes a curated table keeps, and the index each gets (for training)."""

    name: str
    classes: tuple[str, ...]

    def index(self, label: str) -> int | None:
        """Class index in this set, or None when the label is outside it."""
        try:
            return self.classes.index(label)
        except ValueError:
            return None


def target_set(spec: str | Sequence[str]) -> TargetSet:
    """Resolve params.yaml's `labels.target_set`: a named set or an explicit list of classes."""
    if isinstance(spec, str):
        if spec not in TARGET_SETS:
            raise ValueError(f"unknown target set {spec!r}; choose one of {sorted(TARGET_SETS)} or list classes")
        return TargetSet(spec, TARGET_SETS[spec])
    classes = tuple(spec)
    unknown = [c for c in classes if c not in CANONICAL]
    if unknown or len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"target set {classes!r} must be distinct names from {CANONICAL}")
    return TargetSet("custom", classes)
