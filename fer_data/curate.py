"""Curation engine: plan shards, curate each shard into Parquet parts, publish atomically.

The three steps are separate functions so that every orchestrator runs the same code: the
CLI's process pool (`curate`), Prefect tasks and Dask workers (pipelines/) all call
`plan_shards`, `run_shard` and `publish`. A shard is a small descriptor; the worker
re-opens the dataset, so only file paths and counts travel between processes.

Output layout in OUT:
    curated.parquet/part-00000.parquet ...   one part per shard, in shard order
    rejects.parquet/part-00000.parquet ...
    metrics.json                              counts for DVC metrics and logs
    class_counts.csv                          curated rows per target class (DVC plots)
Everything is written under OUT/.staging-*/ first and renamed into place at the end, so a
crash never leaves a half-written table where a reader (or DVC) would pick it up.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fer_data import schema, sources
from fer_data.labels import NOT_AN_EMOTION
from fer_data.params import Params
from fer_data.records import Reject, Sample

log = logging.getLogger("fer_data.curate")

CURATED = "curated.parquet"
REJECTS = "rejects.parquet"
METRICS = "metrics.json"
CLASS_COUNTS = "class_counts.csv"


@dataclass
class Stats:
    """Counts of one shard or of a whole run (they add up)."""

    read: int = 0
    curated: int = 0
    unaligned: int = 0
    rejected: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, other: Stats) -> Stats:
        self.read += other.read
        self.curated += other.curated
        self.unaligned += other.unaligned
        self.rejected.update(other.rejected)
        self.labels.update(other.labels)
        self.seconds += other.seconds
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "curated": self.curated,
            "unaligned": self.unaligned,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "curated_by_label": dict(sorted(self.labels.items())),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stats:
        return cls(
            d["read"],
            d["curated"],
            d["unaligned"],
            Counter(d["rejected_by_reason"]),
            Counter(d["curated_by_label"]),
            d.get("seconds", 0.0),
        )


def label_reject(sample: Sample, params: Params) -> Reject | None:
    """Why a sample's label keeps it out of the curated table (None when it stays)."""
    if sample.label is None:
        if params.keep_unlabelled:
            return None
        return Reject(sample.source, sample.locator, "unlabelled", "the dataset gives this image no label")
    if sample.label == NOT_AN_EMOTION:
        return Reject(
            sample.source, sample.locator, "not_an_emotion", f"label {sample.label_native!r} is not an expression class"
        )
    if params.target.index(sample.label) is None:
        return Reject(
            sample.source,
            sample.locator,
            "label_outside_target_set",
            f"{sample.label} is not in target set {params.target.name} {params.target.classes}",
        )
    return None


class _PartWriter:
    """Streams rows of one shard into one Parquet part file (created even when empty)."""

    def __init__(self, path: Path, table_schema: pa.Schema, chunk_size: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = table_schema
        self.chunk_size = chunk_size
        self.rows: list[dict] = []
        self.writer = pq.ParquetWriter(path, table_schema, compression="zstd")

    def append(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _reject_row(r: Reject) -> dict:
    return {"source": r.source, "locator": r.locator, "reason": r.reason, "detail": r.detail}


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def run_shard(source_name: str, root: str, params: Params, shard: Mapping[str, Any], index: int, staging: str) -> dict:
    """Curate one shard into STAGING/{curated,rejects}.parquet/part-INDEX.parquet; return its counts."""
    from fer_data.faces.process import process_stream  # keeps dlib out of the import path of planning

    start = time.perf_counter()
    src = sources.get(source_name)(root, params.source(source_name))
    stats = Stats()
    staging_dir = Path(staging)
    curated = _PartWriter(staging_dir / CURATED / part_name(index), schema.CURATED, params.run.chunk_size)
    rejects = _PartWriter(staging_dir / REJECTS / part_name(index), schema.REJECTS, params.run.chunk_size)

    def labelled() -> Iterator[Sample | Reject]:
        for item in src.iter_shard(shard):
            stats.read += 1
            yield (label_reject(item, params) or item) if isinstance(item, Sample) else item

    try:
        for item in process_stream(labelled(), params):
            if isinstance(item, Reject):
                stats.rejected[item.reason] += 1
                rejects.append(_reject_row(item))
                continue
            stats.curated += 1
            stats.unaligned += not item["aligned"]
            stats.labels[item["label"] or "unlabelled"] += 1
            curated.append(item)
    finally:
        curated.close()
        rejects.close()
    stats.seconds = time.perf_counter() - start
    return stats.to_dict() | {"seconds": stats.seconds, "worker_peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def plan_shards(source_name: str, root: str | Path, params: Params) -> list[dict[str, Any]]:
    src = sources.get(source_name)(root, params.source(source_name))
    return src.shards(params.run.shard_size, min_shards=4 * params.run.worker_count())


def new_staging(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    return staging


def write_class_counts(path: Path, source_name: str, totals: Stats, classes: Iterable[str]) -> None:
    """One row per target class (zeros included), so `dvc plots` can draw each source's distribution."""
    counts = dict(totals.labels)
    names = list(classes) + sorted(set(counts) - set(classes))  # e.g. "unlabelled" when kept
    lines = ["source,label,count"] + [f"{source_name},{name},{counts.get(name, 0)}" for name in names]
    path.write_text("\n".join(lines) + "\n")


def publish(
    staging: Path,
    out_dir: Path,
    totals: Stats,
    extra_metrics: Mapping[str, Any] | None = None,
    classes: Iterable[str] | None = None,
) -> dict:
    """Write metrics (and class counts), then move each finished output over the old one (old kept until swapped)."""
    metrics = totals.to_dict() | dict(extra_metrics or {})
    (staging / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    names = [CURATED, REJECTS, METRICS]
    if classes is not None:
        write_class_counts(staging / CLASS_COUNTS, str(metrics.get("source", "")), totals, classes)
        names.append(CLASS_COUNTS)
    for name in names:
        target = out_dir / name
        if not (staging / name).exists() and target.exists():
            continue  # moved by an earlier attempt: a retried publish picks up where it stopped
        trash = out_dir / f".old-{uuid.uuid4().hex[:8]}-{name}"
        if target.exists():
            os.replace(target, trash)
        os.replace(staging / name, target)
        if trash.exists():
            shutil.rmtree(trash) if trash.is_dir() else trash.unlink()
    shutil.rmtree(staging, ignore_errors=True)
    return metrics


MapShards = Callable[[list[dict[str, Any]], str], Iterable[dict]]


def curate(
    source_name: str,
    root: str | Path,
    out_dir: str | Path,
    params: Params,
    map_shards: MapShards | None = None,
    *,
    plan: Callable[..., list[dict[str, Any]]] = plan_shards,
    publisher: Callable[..., dict] = publish,
) -> dict:
    """Curate a dataset into OUT; returns the metrics.

    `map_shards` runs shards elsewhere; `plan` and `publisher` replace `plan_shards` and
    `publish` with wrappers of them (Prefect tasks with retries, in pipelines/), so every
    orchestrator shares this one sequence of steps and its bookkeeping.
    """
    out = Path(out_dir)
    start = time.perf_counter()
    shard_list = plan(source_name, str(root), params)
    staging = new_staging(out)
    log.info(
        "%s: curating %s in %d shard(s) with %d worker(s)",
        source_name,
        root,
        len(shard_list),
        params.run.worker_count(),
    )
    try:
        runner = map_shards or (lambda shards, stg: _pool_map(source_name, str(root), params, shards, stg))
        totals = Stats()
        peak_rss = 0.0
        for done, result in enumerate(runner(shard_list, str(staging)), 1):
            totals.add(Stats.from_dict(result))
            peak_rss = max(peak_rss, result.get("worker_peak_rss_mb", 0.0))
            log.info(
                "%s: shard %d/%d done (%d read, %d curated so far)",
                source_name,
                done,
                len(shard_list),
                totals.read,
                totals.curated,
            )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    wall = time.perf_counter() - start
    extra = {
        "source": source_name,
        "seconds": round(wall, 3),
        "shards": len(shard_list),
        "images_per_second": round(totals.read / wall, 2) if wall else None,
        "worker_peak_rss_mb": max(peak_rss, _peak_rss_mb()),
    }
    metrics = publisher(staging, out, totals, extra, params.target.classes)
    log.info(
        "%s: %d read, %d curated, %d rejected %s in %.1f s (%.1f img/s)",
        source_name,
        totals.read,
        totals.curated,
        metrics["rejected"],
        metrics["rejected_by_reason"],
        wall,
        extra["images_per_second"] or 0,
    )
    return metrics


def _pool_map(source_name: str, root: str, params: Params, shard_list: list[dict], staging: str) -> Iterable[dict]:
    """Run shards on a process pool (the per-image Python work holds the GIL: threads would not scale)."""
    workers = min(params.run.worker_count(), len(shard_list))
    if workers <= 1:
        for i, shard in enumerate(shard_list):
            yield run_shard(source_name, root, params, shard, i, staging)
        return
    with worker_pool(workers) as pool:
        futures = [pool.submit(run_shard, source_name, root, params, s, i, staging) for i, s in enumerate(shard_list)]
        for fut in futures:
            yield fut.result()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes for face work, forked from a server that has the dlib models loaded already.

    forkserver, not fork: the caller may have threads (Prefect, Dask). Each worker starts in
    milliseconds with the models shared copy-on-write; spawned workers would each import and
    load them again (seconds apiece). Also used by the Prefect flow's `process` runner.
    """
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["fer_data.faces.warm"])
    return ProcessPoolExecutor(workers, mp_context=ctx)
