"""The corpus as training reads it: manifest.json, Parquet shards, and a batch loader over them.

Why this shape. An exact global shuffle needs any row at any step, and Parquet gives rows a row
group at a time. So each split's image column is read once, row group by row group, with pyarrow
straight into a uint8 cache file (the binary column's data buffer is already the row-major pixels:
no per-image decode) keyed by the shards' sha256, and memory-mapped from then on: the page cache
holds the pixels (2.3 KB a 48x48 face), every DataLoader worker shares the same pages, and a batch
is one `np.take` of 128 rows. Labels, votes and sources are small and sit in memory.

Order. Epoch e's order is a permutation of the split drawn from (seed, e); rank r of R takes an
equal share of it (the last N mod R rows of the permutation wait for the next epoch), so every rank
has the same number of batches and no rank hangs at the end of an epoch. Batch b goes to worker
b mod W and the DataLoader collects workers round-robin, so the order is the same for any W. A
resumed epoch starts at a batch number and yields exactly the batches after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

CORPUS_KIND = "fer-data-corpus"
SPLITS = ("train", "val", "test")
META_COLUMNS = ("sample_id", "source", "label_index")
READ_THREADS = 4  # row-group reads release the GIL; more than a few threads only contend for the disk


class CorpusError(ValueError):
    """A corpus that does not match its manifest (missing shard, wrong checksum, bad image size)."""


@dataclass(frozen=True)
class Corpus:
    """A `fer-data corpus` output folder: its manifest and where its shards are."""

    root: Path
    manifest: dict

    @classmethod
    def open(cls, root: str | Path) -> Corpus:
        root = Path(root)
        path = root / "manifest.json"
        if not path.is_file():
            raise CorpusError(f"{path}: no manifest.json (is {root} a `fer-data corpus` output?)")
        manifest = json.loads(path.read_text())
        if manifest.get("kind") != CORPUS_KIND:
            raise CorpusError(f"{path}: kind is {manifest.get('kind')!r}, expected {CORPUS_KIND!r}")
        return cls(root, manifest)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def image(self) -> dict:
        """{"column", "width", "height", "channels", "dtype"} of the image the shards carry."""
        return self.manifest["image"]

    def shards(self, split: str) -> list[dict]:
        return [s for s in self.manifest["shards"] if s["split"] == split]

    def rows(self, split: str) -> int:
        return sum(s["rows"] for s in self.shards(split))

    def class_weights(self, split: str = "train") -> list[float] | None:
        """The corpus's class weights for a split, in label_index order (None when it has none)."""
        weights = self.manifest.get("splits", {}).get(split, {}).get("class_weights")
        if not weights:
            return None
        return [float(weights.get(c, 0.0)) for c in self.classes]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _image_bytes(column: pa.ChunkedArray, frame: int, where: str) -> np.ndarray:
    """(rows, frame) uint8 view of a binary column whose values are all `frame` bytes long."""
    parts = []
    for chunk in column.chunks:
        if chunk.null_count:
            raise CorpusError(f"{where}: null image")
        offsets = np.frombuffer(chunk.buffers()[1], np.int32 if chunk.type == pa.binary() else np.int64)
        offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
        if len(chunk) and not np.all(np.diff(offsets) == frame):
            raise CorpusError(f"{where}: an image is not {frame} bytes (manifest image size)")
        data = np.frombuffer(chunk.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
        parts.append(data.reshape(len(chunk), frame))
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


@dataclass
class ShardStore:
    """One split of a corpus: a memory-mapped uint8 image cache and the rows' small metadata.

    Picklable by path (the memory map is reopened in each DataLoader worker).
    """

    images_path: Path
    shape: tuple[int, int, int]  # rows, height, width
    labels: np.ndarray  # int64 label_index
    sources: np.ndarray  # int16 index into source_names
    source_names: list[str]
    sample_ids: np.ndarray  # object (str)
    shard_of_row: np.ndarray  # int32 index into the split's manifest shards
    weights: np.ndarray | None = None  # float32 sample_weight column, when the shards have one
    soft: np.ndarray | None = None  # float32 (rows, classes) target distributions from label_votes
    _images: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = None
        return state

    @property
    def images(self) -> np.ndarray:
        if self._images is None:
            rows = self.shape[0]
            if rows == 0:
                self._images = np.zeros(self.shape, np.uint8)
            else:
                self._images = np.memmap(self.images_path, np.uint8, mode="r", shape=self.shape)
        return self._images

    @classmethod
    def open(cls, corpus: Corpus, split: str, cache_dir: str | Path | None = None) -> ShardStore:
        """Read a split's metadata and make (or reuse) its image cache, verifying each shard's sha256."""
        shards = corpus.shards(split)
        spec = corpus.image
        height, width = int(spec["height"]), int(spec["width"])
        if int(spec.get("channels", 1)) != 1 or spec.get("dtype", "uint8") != "uint8":
            raise CorpusError(f"{corpus.root}: only 1-channel uint8 images are supported (manifest image: {spec})")
        cache = Path(cache_dir or Path(tempfile.gettempdir()) / "fer-train-cache")
        cache.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(json.dumps([[s["sha256"] for s in shards], spec], sort_keys=True).encode()).hexdigest()
        images_path = cache / f"{split}-{key[:24]}.u8"
        build = not images_path.is_file()
        with ThreadPoolExecutor(READ_THREADS) as pool:
            parts = list(pool.map(lambda s: _read_shard(corpus, s, height * width, build), shards))
        rows = sum(len(p["labels"]) for p in parts)
        if build:
            _write_cache(images_path, [p.pop("images") for p in parts])
        meta = _merge_meta(parts, len(corpus.classes))
        soft = _soft_targets(parts, corpus) if any(p["votes"] is not None for p in parts) else None
        weights = (
            np.concatenate([p["weights"] for p in parts])
            if parts and all(p["weights"] is not None for p in parts)
            else None
        )
        return cls(images_path, (rows, height, width), soft=soft, weights=weights, **meta)


def _read_shard(corpus: Corpus, shard: dict, frame: int, with_images: bool) -> dict:
    path = corpus.root / shard["path"]
    if not path.is_file():
        raise CorpusError(f"{path}: shard listed in the manifest is missing")
    if _sha256(path) != shard["sha256"]:
        raise CorpusError(f"{path}: sha256 differs from the manifest (corpus changed after it was written?)")
    pf = pq.ParquetFile(path)
    names = set(pf.schema_arrow.names)
    columns = [*META_COLUMNS, *(c for c in ("label_votes", "sample_weight") if c in names)]
    meta = pf.read(columns=columns)
    if meta.num_rows != shard["rows"]:
        raise CorpusError(f"{path}: {meta.num_rows} rows, the manifest says {shard['rows']}")
    if meta.column("label_index").null_count:
        raise CorpusError(f"{path}: rows without label_index")
    images = None
    if with_images:
        column = corpus.image["column"]
        images = [
            _image_bytes(pf.read_row_group(g, [column]).column(0), frame, str(path)) for g in range(pf.num_row_groups)
        ]
        images = np.concatenate(images) if images else np.zeros((0, frame), np.uint8)
    votes = meta.column("label_votes") if "label_votes" in names else None
    return {
        "labels": meta.column("label_index").to_numpy().astype(np.int64),
        "sources": meta.column("source").to_pylist(),
        "sample_ids": meta.column("sample_id").to_pylist(),
        "votes": votes if votes is not None and votes.null_count < len(votes) else None,
        "weights": meta.column("sample_weight").to_numpy().astype(np.float32) if "sample_weight" in names else None,
        "images": images,
    }


def _write_cache(path: Path, blocks: list[np.ndarray]) -> None:
    """Concatenate the shards' pixels into the cache file; written beside it, then renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        for block in blocks:
            f.write(memoryview(np.ascontiguousarray(block)).cast("B"))
    os.replace(tmp, path)


def _merge_meta(parts: list[dict], n_classes: int) -> dict:
    labels = np.concatenate([p["labels"] for p in parts]) if parts else np.zeros(0, np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise CorpusError(f"label_index outside 0..{n_classes - 1} (manifest classes)")
    sources = [s for p in parts for s in p["sources"]]
    names = sorted(set(sources))
    code = {n: i for i, n in enumerate(names)}
    return {
        "labels": labels,
        "sources": np.array([code[s] for s in sources], np.int16),
        "source_names": names,
        "sample_ids": np.array([s for p in parts for s in p["sample_ids"]], object),
        "shard_of_row": np.concatenate([np.full(len(p["labels"]), i, np.int32) for i, p in enumerate(parts)])
        if parts
        else np.zeros(0, np.int32),
    }


def _soft_targets(parts: list[dict], corpus: Corpus) -> np.ndarray:
    """Per-row target distributions over `classes`: FER+ votes where a row has them, else one-hot.

    Votes are over `canonical_classes`; votes for classes outside the target set are dropped and the
    rest renormalised (a row whose votes all fall outside keeps its one-hot label).
    """
    classes, canonical = corpus.classes, list(corpus.manifest.get("canonical_classes") or [])
    take = np.array([canonical.index(c) if c in canonical else -1 for c in classes])
    out = []
    for p in parts:
        rows = np.eye(len(classes), dtype=np.float32)[p["labels"]]
        if p["votes"] is not None:
            for i, v in enumerate(p["votes"].to_pylist()):
                if v is None:
                    continue
                v = np.asarray(v, np.float32)
                picked = np.where(take >= 0, v[np.clip(take, 0, None)], 0.0)
                if picked.sum() > 0:
                    rows[i] = picked / picked.sum()
        out.append(rows)
    return np.concatenate(out)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The split's row order for an epoch: the same for (seed, epoch) on every machine and worker count."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


def rank_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool, rank: int = 0, world: int = 1, drop_last: bool
) -> list[np.ndarray]:
    """Rank `rank`'s batches of the epoch: an equal share of the order for every rank, cut in batches."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside 0..{world - 1}")
    order = epoch_order(n, seed, epoch, shuffle)
    share = n // world
    mine = order[rank * share : (rank + 1) * share]
    stop = share - share % batch_size if drop_last else share
    return [mine[i : i + batch_size] for i in range(0, stop, batch_size)]


class ShardBatches(IterableDataset):
    """Batches of one rank for one epoch (set_epoch first), as dicts of tensors.

    image uint8 (B, H, W), label int64 (B,), index int64 (B,) row in the split (manifest shard
    order), source int16 (B,), target float32 (B, classes) when the store has soft labels, weight float32 (B,)
    when the shards have sample_weight.
    """

    def __init__(self, store: ShardStore, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0,
                 world: int = 1, drop_last: bool = False, pin: bool = False):  # fmt: skip
        self.store, self.batch_size, self.shuffle, self.seed = store, batch_size, shuffle, seed
        self.rank, self.world, self.drop_last, self.pin = rank, world, drop_last, pin
        # (epoch, first batch) in shared memory: persistent workers read it each time an epoch starts.
        self._position = torch.zeros(2, dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._position[0])

    @property
    def start(self) -> int:
        return int(self._position[1])

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """The epoch to iterate, from batch `start` (a resumed epoch skips the batches already done)."""
        self._position[0], self._position[1] = epoch, start

    def batches(self) -> list[np.ndarray]:
        """This rank's whole epoch, batch by batch (row indices)."""
        return rank_batches(len(self.store), self.batch_size, seed=self.seed, epoch=self.epoch, shuffle=self.shuffle,
                            rank=self.rank, world=self.world, drop_last=self.drop_last)  # fmt: skip

    def __len__(self) -> int:
        return max(0, len(self.batches()) - self.start)

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        # Pinned straight from the gather in the main process; workers cannot touch CUDA, the DataLoader pins theirs.
        pin = self.pin and info is None
        batches = self.batches()
        for indices in batches[self.start + worker :: workers]:
            yield self.batch(indices, pin)

    def batch(self, indices: np.ndarray, pin: bool = False) -> dict[str, torch.Tensor]:
        store = self.store
        _, h, w = store.shape
        image = torch.empty((len(indices), h, w), dtype=torch.uint8, pin_memory=pin)
        np.take(store.images, indices, axis=0, out=image.numpy())
        out = {
            "image": image,
            "label": torch.from_numpy(store.labels[indices]),
            "index": torch.from_numpy(indices),
            "source": torch.from_numpy(store.sources[indices]),
        }
        if store.soft is not None:
            out["target"] = torch.from_numpy(store.soft[indices])
        if store.weights is not None:
            out["weight"] = torch.from_numpy(store.weights[indices])
        return out


WORKER_START = "spawn"  # clean worker processes: a fork would inherit the caller's threads and exit hooks (Prefect's)


def make_loader(dataset: ShardBatches, workers: int) -> DataLoader:
    """A DataLoader over already-batched items; iterate it once per epoch after `dataset.set_epoch`.

    With workers, they are started once (spawned, then kept: a spawn costs an import of torch) and
    read each epoch's position from shared memory; the DataLoader pins their batches (CUDA only).
    """
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        pin_memory=dataset.pin and workers > 0,
        prefetch_factor=4 if workers else None,
        persistent_workers=workers > 0,
        multiprocessing_context=WORKER_START if workers else None,
    )
