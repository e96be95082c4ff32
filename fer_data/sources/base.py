"""The one interface every dataset source implements.

A source is constructed with the dataset root (as distributed) and its `sources.<name>`
params, and iterating it yields `Sample`s (and `Reject`s for input it cannot use) lazily,
in a deterministic order, like a torchvision dataset or a Hugging Face builder's
`_generate_examples`. Sources only parse layouts and labels; face work, label filtering and
writing are shared (fer_data.curate), so adding a dataset is one new module plus one
registry line in fer_data.sources.
"""

from __future__ import annotations

import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import create_model

from fer_data.demo import DemoFaces
from fer_data.imageio import MAX_PIXELS
from fer_data.params import Block, Bool, Str, param, validated
from fer_data.records import EXTRA_FIELDS, Reason, Reject, Sample, relative_locator, sha256_bytes
from fer_data.sources.parsing import items_per_shard

#: Re-exported: sources and their tests import the records from here.
__all__ = [
    "EXTRA_FIELDS",
    "KeyedSource",
    "Reason",
    "Reject",
    "Sample",
    "Source",
    "SourceParams",
    "relative_locator",
    "sha256_bytes",
]


class SourceParams(Block):
    """A source's `sources.<name>` block; each source extends it with its own keys (and documents them)."""

    root: Str | None = param(None, "a folder path", "the dataset folder as distributed (relative to the project)")
    follow_symlinks_outside_root: Bool = param(
        False,
        "true or false",
        "read files through symbolic links that lead outside the dataset root (else rejected `outside_root`)",
    )


log = logging.getLogger("fer_data.sources")

#: A Windows drive ("C:\\...", "c:/..."): absolute too, whatever the machine reading the label file.
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


class Source(ABC):
    """A dataset in its native layout. Subclasses set `name` and implement `__iter__`."""

    name: ClassVar[str]
    #: The schema of params.yaml's `sources.<name>` block: defaults, allowed values, descriptions.
    params_model: ClassVar[type[SourceParams]] = SourceParams
    #: The model's defaults (without `root`), what `self.params` starts from.
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: Reject reasons this source gives beyond fer_data.records.REASONS whose kind is not a
    #: data problem (label policy, no face), so that rates and reports count them right.
    reasons: ClassVar[tuple[Reason, ...]] = ()
    #: Pixel cap for what a source decodes itself (video frames); the engine sets it from
    #: faces.max_pixels (fer_data.curate.open_source), so one parameter caps every decode.
    max_pixels: int = MAX_PIXELS
    #: The dataset's native label -> canonical label tables (fer_data.labels), by what they key on.
    #: A code that is not a key is an unknown label, never a guess.
    label_tables: ClassVar[Mapping[str, Mapping[Any, str]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "params_model" in cls.__dict__:
            cls.defaults = {
                k: f.get_default(call_default_factory=True)
                for k, f in cls.params_model.model_fields.items()
                if k != "root"
            }
        elif "defaults" in cls.__dict__:  # a source that lists defaults only: its keys, any values
            fields = {k: (Any, v) for k, v in cls.defaults.items()}
            cls.params_model = create_model(f"{cls.__name__}Params", __base__=SourceParams, **fields)

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        self.root = Path(root)
        given = dict(params or {})
        # Values are checked here too (sources built directly, in tests and notebooks); unknown keys
        # only by params.resolve, because a front class hands its whole block to its readers.
        fields = self.params_model.model_fields
        validated(self.params_model, {k: v for k, v in given.items() if k in fields}, f"sources.{self.name}", None)
        self.params = {**self.defaults, **given}
        if not self.root.exists():
            raise FileNotFoundError(f"{self.name}: dataset root {self.root} does not exist")

    @abstractmethod
    def __iter__(self) -> Iterator[Sample | Reject]:
        """Yield samples and rejects lazily, in a deterministic order."""

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        """Independent pieces of this dataset, as small JSON-able descriptors.

        Workers (processes, Prefect tasks, Dask workers) receive descriptors, not pixels, and
        re-open the dataset themselves, so no image data crosses a process boundary or
        Prefect's result store. The default is one shard: the whole dataset.
        """
        return [{}]

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        """The items of one shard from `shards()`, in order."""
        return iter(self)

    def reject(self, locator: str, reason: str, detail: str = "") -> Reject:
        return Reject(self.name, locator, reason, detail)

    # --- the dataset root is a boundary (issue #9) --------------------------------------------

    def in_root(self, name: str, base: str | Path = "") -> tuple[str, Path] | str:
        """(root-relative locator, path) of a file a label file names, or why it is refused.

        NAME is read as a path relative to BASE (a folder inside the root, root-relative). An
        absolute name, `..` climbing above the root and, unless `follow_symlinks_outside_root`,
        a symbolic link leading outside are refused: a label file must never make the pipeline
        read another dataset or /etc. `..` inside the root is resolved, so locators never hold it.
        """
        text = str(name).replace("\\", "/")
        if text.startswith("/") or _DRIVE.match(text):
            return f"absolute path {text[:80]!r} in a label file"
        parts: list[str] = []
        for part in (PurePosixPath(Path(base).as_posix()) / text).parts:
            if part == "..":
                if not parts:
                    return f"{text[:80]!r} climbs out of the dataset root"
                parts.pop()
            elif part not in (".", ""):
                parts.append(part)
        locator = "/".join(parts)
        path = self.root / locator
        leak = self.symlink_leak(path)
        return leak if leak else (locator, path)

    def symlink_leak(self, path: str | Path) -> str | None:
        """Why PATH (inside the root by name) leads outside it through a symbolic link, or None."""
        if self.params.get("follow_symlinks_outside_root"):
            return None
        real, root = os.path.realpath(path), self._real_root()
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return None
        return f"a symbolic link leads outside the dataset root (to {real}); sources.{self.name}.follow_symlinks_outside_root allows it"

    def _real_root(self) -> str:
        if getattr(self, "_real_root_path", None) is None:
            self._real_root_path = os.path.realpath(self.root)
        return self._real_root_path

    def boundary_reject(self, item: Sample | Reject) -> Reject | None:
        """The engine's net under every source: a `..` in a locator, or a file read outside the root.

        Sources check the names their label files give (`in_root`); this catches the rest (a
        folder walk meeting a symbolic link, a source written without the check).
        """
        locator = item.locator.replace("\\", "/")
        if ".." in re.split(r"[/:]", locator) or locator.startswith("/"):
            return self.reject(
                _safe_locator(locator), "outside_root", f"locator {locator[:80]!r} leaves the dataset root"
            )
        if isinstance(item, Sample) and item.path is not None:
            leak = self.symlink_leak(item.path)
            if leak:
                return self.reject(item.locator, "outside_root", leak)
        return None

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """Write a small raw tree in this source's native layout (see fer_data.demo)."""
        raise NotImplementedError(f"{cls.name} has no demo tree")


def _safe_locator(locator: str) -> str:
    """A locator without `..` or a leading `/` (each such segment spelt out), for the reject row."""
    return "/".join("(up)" if p == ".." else p for p in locator.lstrip("/").split("/"))


class KeyedSource(Source):
    """A source whose items are addressed by small keys (file paths, sequence folders, ...).

    Subclasses list keys in a deterministic order and turn one key into its items; sharding
    and iteration come for free.
    """

    @abstractmethod
    def keys(self) -> Iterator[str]:
        """Item keys, sorted, lazily."""

    @abstractmethod
    def items(self, key: str) -> Iterator[Sample | Reject]:
        """The samples (or rejects) of one key."""

    def __iter__(self) -> Iterator[Sample | Reject]:
        for key in self.keys():
            yield from self.items(key)

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        keys = list(self.keys())
        if not keys:
            return [{"keys": []}]
        size = items_per_shard(len(keys), max_items, min_shards)
        return [{"keys": keys[i : i + size]} for i in range(0, len(keys), size)]

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        for key in shard["keys"]:
            try:
                yield from self.items(key)
            except Exception as exc:  # a parser bug on hostile input costs this key, not the run
                log.warning("%s: %s raised while reading: the key is rejected", self.name, key, exc_info=True)
                yield self.reject(key, "unexpected_error", f"{type(exc).__name__}: {exc}"[:300])
