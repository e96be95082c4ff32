"""The label taxonomy: canonical classes, target sets, and the lookups every dataset's table goes through.

Every dataset numbers its classes differently (FER2013's 0 is anger, CK+'s 0 is neutral,
RAF-DB starts at 1 with surprise). Mixing them up silently poisons a training set, so each
source maps its native codes through one lookup table, declared in its own module
(`Source.label_tables`; `tables()` lists them all). Tables are plain dicts: a code that is not
a key is an unknown label, never a guess.
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

#: Common English class-folder names (a team's own data, CK+48, web-app exports).
#: params.yaml can add or override names per source (`class_map`).
FOLDER_NAMES = {
    **{c: c for c in CANONICAL},
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


def tables() -> dict[str, Mapping]:
    """Every registered source's label tables, as "source.kind" -> table."""
    from fer_data import sources

    return {f"{n}.{kind}": t for n in sources.names() for kind, t in sources.get(n).label_tables.items()}


#: Former names of the tables now declared by their sources (kept for callers of fer_data.labels).
_MOVED = {
    "FER2013": "fer_data.sources.fer2013:LABELS",
    "FER2013_FOLDERS": "fer_data.sources.fer2013:FOLDER_LABELS",
    "JAFFE": "fer_data.sources.jaffe:LABELS",
    "CKPLUS": "fer_data.sources.ckplus:LABELS",
    "TFEID_CODES": "fer_data.sources.tfeid:LABELS",
    "AFFWILD2": "fer_data.sources.affwild2:LABELS",
    "FERPLUS": "fer_data.sources.ferplus:LABELS",
    "FERPLUS_COLUMNS": "fer_data.sources.ferplus:VOTE_COLUMNS",
    "RAFDB": "fer_data.sources.rafdb:LABELS",
    "AFFECTNET": "fer_data.sources.affectnet:LABELS",
}


def __getattr__(name: str) -> object:
    if name in _MOVED:
        import importlib

        module, attr = _MOVED[name].split(":")
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
