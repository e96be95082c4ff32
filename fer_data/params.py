"""params.yaml: the single file a user edits to point at datasets and tune the curation.

Every block has one owner that declares its schema (a pydantic model: defaults, allowed
values, a description per key; unknown keys refused): the curation blocks below, each
source's block in its own module (`Source.params_model`), the other blocks in the module that
reads them (BLOCK_OWNERS, and the `fer_data.params` entry points of packages built on the
library). `resolve()` checks the whole file before any work and raises ParamsError with one
line naming the key path and what is allowed, e.g.
`params.yaml: align.size: must be an integer >= 8 (got 0)`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic import Strict as _Strict

from fer_data import plugins
from fer_data.labels import TargetSet, target_set

log = logging.getLogger("fer_data.params")

# Types for params schemas. Strict: YAML's `no` is a bool but "no" is a string, and a string
# where a number belongs is a typo to report, not a value to coerce. Lists may be given for tuples.
Bool = StrictBool
Int = StrictInt
Str = StrictStr
Float = Annotated[float, _Strict()]  # an int is accepted (YAML writes 4.0 as 4)


def param(default: Any, allowed: str, description: str, **constraints: Any) -> Any:
    """A params key: its default, what is allowed (for error messages) and what it does (for docs)."""
    return Field(default, description=description, json_schema_extra={"allowed": allowed}, **constraints)


class Block(BaseModel):
    """Base of every params block: unknown keys are refused (a misspelt key would keep its default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelsParams(Block):
    target_set: Str | list[Str] = param(
        "fer2013_7", "fer2013_7, basic6, all8 or a list of canonical classes", "the classes kept and their indices"
    )
    keep_unlabelled: Bool = param(False, "true or false", "keep unlabelled images (else rejected as `unlabelled`)")


class FaceParams(Block):
    detector: Literal["hog", "cnn"] = param("hog", "hog or cnn", "dlib HOG (CPU) or MMOD CNN (GPU in practice)")
    # Detection runs on a copy rescaled so that the expected face is about this wide: dlib's HOG
    # window is 80 px, so ~100 px faces are found reliably without the cost of always upsampling
    # (4x the time) or searching full-resolution frames.
    target_face_px: Int = param(80, "an integer >= 20", "expected face width the detector searches at", ge=20)
    max_upscale: Float = param(4.0, "a number >= 1", "largest upscaling of a small image before detection", ge=1)
    hog_threshold: Float = param(0.0, "a number", "HOG detection score threshold")
    cnn_threshold: Float = param(0.0, "a number", "CNN detection score threshold")
    retry_upsampled: Bool = param(True, "true or false", "when nothing is found, try once more at 2x")
    precropped_fallback: Literal["keep_unaligned", "reject"] = param(
        "keep_unaligned", "keep_unaligned or reject", "pre-cropped images whose landmark fit fails the check"
    )
    min_eye_distance_ratio: Float = param(
        0.22, "a number in (0, 1)", "landmark check: eye distance / face box width, lower bound", gt=0, lt=1
    )
    max_eye_distance_ratio: Float = param(
        0.65, "a number in (0, 1]", "landmark check: eye distance / face box width, upper bound", gt=0, le=1
    )
    max_roll_deg: Float = param(45.0, "a number in (0, 90]", "landmark check: largest head roll", gt=0, le=90)
    max_shape_residual: Float = param(
        0.22, "a number > 0", "landmark fit vs a face shape (RMS / eye distance, fer_data.faces.quality)", gt=0
    )
    max_pixels: Int = param(
        50_000_000,
        "an integer >= 64",
        "most pixels a frame may declare, checked before decoding (decompression bombs)",
        ge=64,
    )
    embeddings: Bool = param(
        True, "true or false", "dlib's 128-d face descriptor of every aligned face (the corpus clusters identities)"
    )


EyeTarget = tuple[Annotated[float, _Strict(), Field(gt=0, lt=1)], Annotated[float, _Strict(), Field(gt=0, lt=1)]]
#: Below this an aligned face has too few pixels for any expression model (FER2013's 48 is the usual size).
MIN_ALIGNED_SIZE = 8


class AlignParams(Block):
    size: Int = param(48, f"an integer >= {MIN_ALIGNED_SIZE}", "side of the aligned grey face", ge=MIN_ALIGNED_SIZE)
    eye_left: EyeTarget = param(
        (0.30, 0.36), "two numbers in (0, 1)", "image-left eye centre (the person's right eye), fraction of size"
    )
    eye_right: EyeTarget = param((0.70, 0.36), "two numbers in (0, 1)", "image-right eye centre, fraction of size")
    extra_size: Int = param(
        0, f"0 (off) or an integer >= {MIN_ALIGNED_SIZE}", "a second, larger aligned image (e.g. 112)", ge=0
    )
    border: Literal["edge", "constant", "reflect"] = param(
        "edge",
        "edge, constant or reflect",
        "how pixels from outside the original image are filled (fer_data.faces.align)",
    )

    @model_validator(mode="after")
    def _eyes_apart(self) -> AlignParams:
        if not self.eye_left[0] < self.eye_right[0]:
            raise ValueError(f"eye_left: must lie left of eye_right (got x {self.eye_left[0]} >= {self.eye_right[0]})")
        if 0 < self.extra_size < MIN_ALIGNED_SIZE:
            raise ValueError(f"extra_size: must be 0 (off) or an integer >= {MIN_ALIGNED_SIZE} (got {self.extra_size})")
        return self


class RunParams(Block):
    workers: Int = param(0, "an integer >= 0 (0: all cores)", "processes for face work", ge=0)
    shard_size: Int = param(
        2048, "an integer >= 1", "most items per shard (unit of parallel work and of part files)", ge=1
    )
    chunk_size: Int = param(256, "an integer >= 1", "rows per Parquet write", ge=1)

    def worker_count(self) -> int:
        import os

        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


class ParamsError(ValueError):
    """params.yaml is not valid: one line naming the key path and what is allowed."""


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
        """The `sources.<name>` block as written (empty when absent); the source applies its defaults."""
        return dict(self.sources.get(name) or {})


#: params.yaml blocks owned by the library: block -> "module:attr" of a pydantic model or of a
#: function that takes the block and raises ValueError. Packages built on the library (pipelines,
#: train) declare theirs as `fer_data.params` entry points. A block nobody owns is refused; an
#: owner that cannot be imported (a package not installed, a module not written yet) is skipped.
BLOCK_OWNERS: dict[str, str] = {
    "labels": "fer_data.params:LabelsParams",
    "faces": "fer_data.params:FaceParams",
    "align": "fer_data.params:AlignParams",
    "run": "fer_data.params:RunParams",
    "sources": "fer_data.params:check_sources",
    "validation": "fer_data.validate:check_params",
    "corpus": "fer_data.corpus.params:CorpusParams",
    "drift": "fer_data.drift.config:DriftConfig",
    "review": "fer_data.review.params:ReviewParams",
}

#: The defaults of the curation blocks, as a mapping (what an empty params.yaml means).
DEFAULTS: dict[str, Any] = {
    "labels": LabelsParams().model_dump(),
    "faces": FaceParams().model_dump(),
    "align": AlignParams().model_dump(),
    "run": RunParams().model_dump(),
    "sources": {},
}


def owners() -> dict[str, str]:
    return plugins.declared(plugins.PARAMS_BLOCKS) | BLOCK_OWNERS


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; override wins. Lists are replaced, not merged."""
    out = copy.deepcopy(dict(base))
    for name, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(name), Mapping):
            out[name] = deep_merge(out[name], value)
        else:
            out[name] = copy.deepcopy(value)
    return out


def resolve(raw: Mapping[str, Any] | None = None, origin: str = "params") -> Params:
    """Validate a (partial) params mapping, every block, before any work; ParamsError names the bad key."""
    raw = dict(raw or {})
    check_blocks(raw, origin)
    labels = validated(LabelsParams, raw.get("labels"), "labels", origin)
    try:
        target = target_set(labels.target_set)
    except ValueError as exc:
        raise ParamsError(f"{origin}: labels.target_set: {exc}") from None
    return Params(
        target=target,
        keep_unlabelled=labels.keep_unlabelled,
        faces=validated(FaceParams, raw.get("faces"), "faces", origin),
        align=validated(AlignParams, raw.get("align"), "align", origin),
        run=validated(RunParams, raw.get("run"), "run", origin),
        sources={name: dict(block or {}) for name, block in (raw.get("sources") or {}).items()},
    )


def check_blocks(raw: Mapping[str, Any], origin: str) -> None:
    """Every top-level block through its owner; a block nobody owns is refused."""
    known = owners()
    for name, block in raw.items():
        if name not in known:
            raise ParamsError(f"{origin}: {name}: unknown block; known: {', '.join(sorted(known))}")
        if block is not None and not isinstance(block, Mapping):
            raise ParamsError(f"{origin}: {name}: must be a mapping of keys (got {block!r})")  # what owners expect
        try:
            owner = plugins.load(known[name])
        except (ImportError, AttributeError) as exc:
            log.debug("params block %s: owner %s not importable (%s): not checked", name, known[name], exc)
            continue
        if isinstance(owner, type) and issubclass(owner, BaseModel):
            validated(owner, block, name, origin)
            continue
        try:
            owner(block or {})
        except ValueError as exc:  # owners name the key path from the block down
            raise ParamsError(f"{origin}: {_first_line(exc)}") from None


def check_sources(block: Mapping[str, Any]) -> None:
    """`sources:`: each entry is a registered source, and its block follows that source's schema."""
    from fer_data import sources

    for name, entry in block.items():
        if name not in sources.REGISTRY:
            raise ValueError(f"sources.{name}: unknown source; known: {', '.join(sources.names())}")
        validated(sources.get(name).params_model, entry, f"sources.{name}", None)


def validated(model: type[BaseModel], block: Any, where: str, origin: str | None) -> Any:
    """MODEL built from BLOCK (None: defaults), or ParamsError naming the first bad key under WHERE."""
    if block is not None and not isinstance(block, Mapping) and not issubclass(model, RootModel):
        message = f"{where}: must be a mapping of keys (got {block!r})"
        raise ParamsError(f"{origin}: {message}" if origin else message)
    try:
        return model.model_validate(block or {})
    except ValidationError as exc:
        message = f"{where}.{describe(model, exc.errors()[0], block)}"
        raise ParamsError(f"{origin}: {message}" if origin else message) from None


def describe(model: type[BaseModel], error: Mapping[str, Any], block: Any = None) -> str:
    """One pydantic error as 'key.path: must be ALLOWED (got VALUE)' or 'key: unknown key; known: ...'."""
    path, info, known, value = [], None, None, block
    annotation: Any = model
    for part in error["loc"]:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, RootModel):
            annotation = _unwrap(annotation.model_fields["root"].annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            known = list(annotation.model_fields)
            info = annotation.model_fields.get(str(part))
            annotation = info.annotation if info else None
        elif get_origin(annotation) is dict:
            info, known, annotation = None, None, get_args(annotation)[1]
        else:
            break  # inside a list or tuple: the whole value is reported
        path.append(str(part))
        value = value.get(part) if isinstance(value, Mapping) else error.get("input")
    where = ".".join(path) or "(block)"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; known: {', '.join(known or [])}"
    if error["type"] == "value_error":  # a model's own check: it names the key from the block down
        return _first_line(str(error["msg"]).removeprefix("Value error, "))
    extra = (info.json_schema_extra or {}) if info else {}
    allowed = extra.get("allowed") if isinstance(extra, dict) else None
    wanted = allowed or str(error["msg"]).removeprefix("Input should be ")
    return f"{where}: must be {wanted} (got {value!r})"


def _unwrap(annotation: Any) -> Any:
    """The model or container inside Optional[...] / Annotated[...]."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) not in (dict, list, tuple, None) and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def _first_line(exc: object) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


#: params.yaml in the working directory: the project's, where DVC stages and users run commands.
DEFAULT_PATH = "params.yaml"


def default_path(path: str | Path | None) -> str | None:
    """PATH when given, else ./params.yaml when there is one, else None (built-in defaults)."""
    if path is not None:
        return str(path)
    return DEFAULT_PATH if Path(DEFAULT_PATH).exists() else None


def with_workers(p: Params, workers: int | None) -> Params:
    """P with run.workers replaced by a command-line override (None: keep params.yaml's)."""
    return p if workers is None else replace(p, run=p.run.model_copy(update={"workers": workers}))


def read_raw(path: str | Path | None) -> dict[str, Any]:
    """params.yaml as written (an empty mapping without a file); ParamsError when it is not a YAML mapping."""
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if doc is not None and not isinstance(doc, Mapping):
        raise ParamsError(f"{path}: must be a mapping of blocks (labels, faces, ...), not {type(doc).__name__}")
    return dict(doc or {})


def read(path: str | Path | None) -> tuple[dict[str, Any], Params]:
    """params.yaml as written and resolved, validated as a whole (missing path -> defaults)."""
    raw = read_raw(path)
    return raw, resolve(raw, origin=str(path) if path is not None else "params")


def load(path: str | Path | None) -> Params:
    """Read and validate params.yaml (missing path -> defaults)."""
    return read(path)[1]
