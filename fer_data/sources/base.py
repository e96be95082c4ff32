"""The one interface every dataset source implements.

A source is constructed with the dataset root (as distributed) and its `sources.<name>`
params, and iterating it yields `Sample`s (and `Reject`s for input it cannot use) lazily,
in a deterministic order, like a torchvision dataset or a Hugging Face builder's
`_generate_examples`. Sources only parse layouts and labels; face work, label filtering and
writing are shared (fer_data.curate), so adding a dataset is one new module plus one
registry line in fer_data.sources.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from fer_data.records import EXTRA_FIELDS, Reason, Reject, Sample, relative_locator, sha256_bytes

#: Re-exported: sources and their tests import the records from here.
__all__ = [
    "EXTRA_FIELDS",
    "KeyedSource",
    "Reason",
    "Reject",
    "Sample",
    "Source",
    "relative_locator",
    "sha256_bytes",
]


class Source(ABC):
    """A dataset in its native layout. Subclasses set `name` and implement `__iter__`."""

    name: ClassVar[str]
    #: Per-source params defaults, overridden by params.yaml's `sources.<name>` block.
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: Reject reasons this source gives beyond fer_data.records.REASONS whose kind is not a
    #: data problem (label policy, no face), so that rates and reports count them right.
    reasons: ClassVar[tuple[Reason, ...]] = ()

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
