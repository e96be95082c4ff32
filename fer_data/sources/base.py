"""The one interface every dataset source implements.

A source is constructed with the dataset root (as distributed) and its `sources.<name>`
params, and iterating it yields `Sample`s (and `Reject`s for input it cannot use) lazily,
in a deterministic order, like a torchvision dataset or a Hugging Face builder's
`_generate_examples`. Sources only parse layouts and labels; face work, label filtering and
writing are shared (fer_data.curate), so adding a dataset is one new module plus one
registry line in fer_data.sources.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

#: Extra per-sample values a source may set (Sample.extra); each is a nullable column of
#: the curated table (fer_data.schema), so every source's table shares one schema.
EXTRA_FIELDS = ("valence", "arousal", "label_votes")


@dataclass
class Sample:
    """One image of a dataset, before any face work.

    The image is either already decoded (`pixels`: CSV rows, video frames) or a file
    (`path`) that the worker process decodes, so that decoding runs in parallel and the
    main process never holds more than a chunk of images.
    """

    source: str
    locator: str  # root-relative path, or "file.csv:LINE"; stable across machines
    label_native: str | None
    label: str | None  # canonical name (fer_data.labels) or None when unlabelled
    split: str | None = None  # train / val / test, when the dataset defines one
    split_original: str | None = None  # the dataset's own split name
    subject_id: str | None = None
    sequence_id: str | None = None
    frame_index: int | None = None
    pixels: np.ndarray | None = None
    path: str | None = None
    raw_sha256: str | None = None
    precropped: bool = False  # the whole frame is the face box (FER2013)
    face_box: tuple[int, int, int, int] | None = None  # given detection: left, top, right, bottom
    face_side: str | None = None  # "left" / "right": keep the face on that side (two-person videos)
    provided_landmarks: np.ndarray | None = None  # (68, 2) in original image coordinates
    expected_face_fraction: float = 0.5  # expected face width / min(image side), for detection scale
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """An input that could not become a curated row, and why (a short reason code + detail)."""

    source: str
    locator: str
    reason: str
    detail: str = ""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def relative_locator(root: Path, path: Path) -> str:
    """Root-relative POSIX path: the stable, machine-independent name of a file sample."""
    return path.relative_to(root).as_posix()


class Source(ABC):
    """A dataset in its native layout. Subclasses set `name` and implement `__iter__`."""

    name: ClassVar[str]
    #: Per-source params defaults, overridden by params.yaml's `sources.<name>` block.
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        self.root = Path(root)
        self.params = {**self.defaults, **(params or {})}
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

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:  # noqa: F821 (fer_data.demo)
        """Write a small raw tree in this source's native layout (see fer_data.demo)."""
        raise NotImplementedError(f"{cls.name} has no demo tree")


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
        size = max(1, min(max_items, -(-len(keys) // max(1, min_shards))))
        return [{"keys": keys[i : i + size]} for i in range(0, len(keys), size)]

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        for key in shard["keys"]:
            yield from self.items(key)
