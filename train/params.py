"""The `train:` block of params.yaml: typed defaults and a checker with one-line messages.

pydantic is not in the stock PyTorch image this package must run on, so the schema is plain
dataclasses: each field's type comes from its annotation and its allowed values from a `rule`
in the field's metadata. Unknown keys are refused: a misspelt key would silently keep its default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ParamsError(ValueError):
    """A bad `train:` value; the message is one line naming the key path."""


def rule(default, check: Callable[[object], bool], expect: str):
    """A field with a default and a check; `expect` completes "must be ..." in the error message."""
    return field(default=default, metadata={"check": check, "expect": expect})


def _positive(v) -> bool:
    return v > 0


def _non_negative(v) -> bool:
    return v >= 0


def _one_of(*names: str):
    return rule(names[0], lambda v: v in names, "one of " + " | ".join(names))


@dataclass(frozen=True)
class Augment:
    """Batch augmentation on the device (train.augment); the seeds' best ranges are the defaults."""

    flip: bool = True
    rotate_deg: float = rule(10.0, lambda v: 0 <= v <= 45, "a number in [0, 45]")
    zoom: float = rule(0.1, lambda v: 0 <= v < 0.5, "a number in [0, 0.5)")
    shift: float = rule(0.1, lambda v: 0 <= v < 0.5, "a number in [0, 0.5)")


@dataclass(frozen=True)
class TrainParams:
    """Every key of params.yaml `train:` (documented there)."""

    model: str = _one_of("five_layer", "baseline", "resnet18")
    epochs: int = rule(30, _positive, "an integer > 0")
    batch_size: int = rule(128, _positive, "an integer > 0")
    lr: float = rule(0.1, _positive, "a number > 0")
    momentum: float = rule(0.9, lambda v: 0 <= v < 1, "a number in [0, 1)")
    weight_decay: float = rule(1e-4, _non_negative, "a number >= 0")
    lr_factor: float = rule(0.5, lambda v: 0 < v < 1, "a number in (0, 1)")
    lr_patience: int = rule(2, _non_negative, "an integer >= 0")
    early_stop_patience: int = rule(6, _positive, "an integer > 0")
    loss_weights: str = _one_of("class", "sample", "none")
    soft_labels: bool = True
    augment: Augment = field(default_factory=Augment)
    tta_flip: bool = True
    seed: int = 0
    workers: int = rule(0, _non_negative, "an integer >= 0")
    device: str = _one_of("auto", "cpu", "cuda")
    amp: bool = True
    channels_last: bool = True
    checkpoint_every: int = rule(0, _non_negative, "an integer >= 0")
    cache_dir: str | None = None
    drop_last: bool = True


def _type_ok(value, annotation) -> tuple[bool, str]:
    """Whether value fits annotation (bool is not a number here); the type's name for the message."""
    if isinstance(annotation, types.UnionType):
        kinds = typing.get_args(annotation)
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        return any(_type_ok(value, k)[0] for k in kinds), names
    if annotation is type(None):
        return value is None, "null"
    if annotation is bool:
        return isinstance(value, bool), "true or false"
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool), "an integer"
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool), "a number"
    return isinstance(value, annotation), annotation.__name__


def build(cls, raw: Mapping | None, path: str, origin: str | None = "params.yaml"):
    """An instance of dataclass `cls` from a mapping, every value checked; ParamsError names the key path.

    The message starts with `origin: ` (the file) unless origin is None.
    """
    lead = f"{origin}: " if origin else ""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{lead}{path}: must be a mapping (got {raw!r})")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"{lead}{path}.{unknown[0]}: unknown key (known: {', '.join(fields)})")
    values = {}
    for name, value in raw.items():
        key, annotation = f"{path}.{name}", hints[name]
        if dataclasses.is_dataclass(annotation):
            values[name] = build(annotation, value, key, origin)
            continue
        ok, kind = _type_ok(value, annotation)
        meta = fields[name].metadata
        if ok and value is not None and "check" in meta:
            ok, kind = meta["check"](value), meta["expect"]
        if not ok:
            raise ParamsError(f"{lead}{key}: must be {kind} (got {value!r})")
        values[name] = float(value) if annotation is float else value
    return cls(**values)


def load(params_path: str | Path | None, overrides: Mapping | None = None) -> TrainParams:
    """TrainParams from params.yaml's `train:` block (defaults when the file or block is absent)."""
    raw: dict = {}
    origin = "params.yaml"
    if params_path is not None and Path(params_path).exists():
        origin = str(params_path)
        doc = yaml.safe_load(Path(params_path).read_text()) or {}
        raw = dict(doc.get("train") or {})
    raw.update(overrides or {})
    return build(TrainParams, raw, "train", origin=Path(origin).name)


def check_block(block: Mapping) -> None:
    """fer-data's params check of the whole file calls this for `train:` (pyproject entry point fer_data.params)."""
    build(TrainParams, block, "train", origin=None)


def to_dict(params: TrainParams) -> dict:
    return dataclasses.asdict(params)
