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
Everything is written into a staging folder beside OUT and published by one switch of the
two folders, under a lock on OUT (fer_data.output): a crash never leaves a half-written table,
or new tables beside old metrics, where a reader (or DVC) would pick them up.

The shard plan depends on the data and params only, never on the machine's core count, so the
part files (and DVC's hashes) are the same bytes on any machine and with any worker count.
Between the shards and publishing, images a label file names twice are settled across shards
(`duplicate_entries`): curated once, or not at all when the entries disagree on the label.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fer_data import output, schema, sources
from fer_data.imageio import clean_detail
from fer_data.labels import NOT_AN_EMOTION
from fer_data.params import Params
from fer_data.records import Reject, Sample, run_summary

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
    """A rejects-table row; details lose memory addresses a parser's message may carry (same input, same bytes)."""
    return {"source": r.source, "locator": r.locator, "reason": r.reason, "detail": clean_detail(r.detail)}


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def open_source(source_name: str, root: str | Path, params: Params) -> sources.Source:
    """Source NAME over ROOT with its params block, and the run-wide limits it must keep (faces.max_pixels)."""
    src = sources.get(source_name)(root, params.source(source_name))
    src.max_pixels = params.faces.max_pixels
    return src


def run_shard(source_name: str, root: str, params: Params, shard: Mapping[str, Any], index: int, staging: str) -> dict:
    """Curate one shard into STAGING/{curated,rejects}.parquet/part-INDEX.parquet; return its counts."""
    from fer_data.faces.process import process_stream  # keeps dlib out of the import path of planning

    start = time.perf_counter()
    src = open_source(source_name, root, params)
    stats = Stats()
    staging_dir = Path(staging)
    curated = _PartWriter(staging_dir / CURATED / part_name(index), schema.CURATED, params.run.chunk_size)
    rejects = _PartWriter(staging_dir / REJECTS / part_name(index), schema.REJECTS, params.run.chunk_size)

    files: deque = deque()  # per input in order, the file it reads (process_stream answers 1:1, in order)
    entries: list[list] = []  # [file, label, row, locator] of each curated row read from a file

    def labelled() -> Iterator[Sample | Reject]:
        for item in src.iter_shard(shard):
            stats.read += 1
            item = src.boundary_reject(item) or item
            files.append(entry_file(src.root, item) if isinstance(item, Sample) else None)
            yield (label_reject(item, params) or item) if isinstance(item, Sample) else item

    with output.disk_errors(output.target_of(staging_dir)):
        try:
            for item in process_stream(labelled(), params):
                file = files.popleft()
                if isinstance(item, Reject):
                    stats.rejected[item.reason] += 1
                    rejects.append(_reject_row(item))
                    continue
                if file is not None:
                    entries.append([file, item["label"], stats.curated, item["locator"]])
                stats.curated += 1
                stats.unaligned += not item["aligned"]
                stats.labels[item["label"] or "unlabelled"] += 1
                curated.append(item)
        finally:
            curated.close()
            rejects.close()
    stats.seconds = time.perf_counter() - start
    extra = {"seconds": stats.seconds, "worker_peak_rss_mb": _peak_rss_mb(), "index": index, "entries": entries}
    return stats.to_dict() | extra


def entry_file(root: Path, sample: Sample) -> str | None:
    """The file a sample reads, root-relative (None for decoded pixels: CSV rows, video frames)."""
    return None if sample.path is None else os.path.relpath(os.path.realpath(sample.path), os.path.realpath(root))


def duplicate_entries(results: Iterable[Mapping[str, Any]]) -> dict[int, dict[int, tuple[str, str, str]]]:
    """Curated rows to turn into rejects: {part: {row: (reason, detail, locator)}}.

    A label file that names one image twice must not curate it twice (the same face in two
    splits leaks, and the table would hold one sample_id twice). With the same label the first
    entry (in shard order: the same on any machine) stays and the others are `duplicate_entry`;
    with different labels none can be trusted and all are `label_conflict`.
    """
    seen: dict[str, list[tuple[int, int, str | None, str]]] = {}
    for result in sorted(results, key=lambda r: r["index"]):
        for file, label, row, locator in result.get("entries") or ():
            seen.setdefault(file, []).append((result["index"], row, label, locator))
    drop: dict[int, dict[int, tuple[str, str, str]]] = {}
    for file, places in seen.items():
        if len(places) < 2:
            continue
        labels_ = sorted({str(label) for _, _, label, _ in places})
        conflict = len(labels_) > 1
        used: set[str] = set()
        for n, (part, row, _, locator) in enumerate(places):
            # One image named twice may keep one locator (RAF-DB's is the image): number the repeats.
            shown = locator if locator not in used else f"{locator}#{n + 1}"
            used.add(shown)
            if conflict:
                why = ("label_conflict", f"{file} is named {len(places)} times with labels {', '.join(labels_)}")
            elif n:
                why = ("duplicate_entry", f"{file} is named again (entry {n + 1} of {len(places)}); the first is kept")
            else:
                continue
            drop.setdefault(part, {})[row] = (*why, shown)
    return drop


def reject_duplicates(staging: Path, drop: Mapping[int, Mapping[int, tuple[str, str, str]]], totals: Stats) -> None:
    """Move the rows DROP names from their curated part into the rejects part (parts rewritten in place)."""
    for part, rows in sorted(drop.items()):
        curated_path, rejects_path = staging / CURATED / part_name(part), staging / REJECTS / part_name(part)
        table = pq.read_table(curated_path)
        gone = (
            table.take(pa.array(sorted(rows), pa.int64())).select(["source", "locator", "label", "aligned"]).to_pylist()
        )
        keep = [i for i in range(table.num_rows) if i not in rows]
        new = []
        for (_, (reason, detail, locator)), row in zip(sorted(rows.items()), gone):
            new.append({"source": row["source"], "locator": locator, "reason": reason, "detail": detail})
            totals.curated -= 1
            totals.unaligned -= not row["aligned"]
            totals.labels[row["label"] or "unlabelled"] -= 1
            totals.rejected[reason] += 1
        totals.labels = +totals.labels  # drop zero counts
        old_rejects = pq.read_table(rejects_path)
        _rewrite(curated_path, table.take(pa.array(keep, pa.int64())))
        _rewrite(rejects_path, pa.concat_tables([old_rejects, pa.Table.from_pylist(new, schema=old_rejects.schema)]))


def _rewrite(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


#: A dataset is cut into at least this many shards (when it has that many items), whatever the
#: machine: planning from the core count made the part files, and so DVC's hashes, differ
#: between machines. 16 keeps up to 16 cores busy on a small dataset (4 shards a worker on 4
#: cores, which evens out shards of unequal cost); large datasets are cut by run.shard_size.
MIN_SHARDS = 16


def plan_shards(source_name: str, root: str | Path, params: Params) -> list[dict[str, Any]]:
    """Shard descriptors from the data and params only (MIN_SHARDS, run.shard_size)."""
    src = open_source(source_name, root, params)
    return src.shards(params.run.shard_size, min_shards=MIN_SHARDS)


def new_staging(out_dir: Path) -> Path:
    """A staging folder beside OUT (fer_data.output)."""
    return output.new_staging(Path(out_dir))


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
    """Write metrics (and class counts) into STAGING, then make it OUT in one switch (safe to retry)."""
    staging, out_dir = Path(staging), Path(out_dir)
    metrics = totals.to_dict() | dict(extra_metrics or {})
    if not output.switched(staging, out_dir):
        with output.disk_errors(out_dir):
            (staging / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
            if classes is not None:
                write_class_counts(staging / CLASS_COUNTS, str(metrics.get("source", "")), totals, classes)
    output.switch(staging, out_dir, OUTPUTS)
    return metrics


#: What a run writes into OUT; anything else there (DVC's .gitignore) is carried over on publish.
OUTPUTS = (CURATED, REJECTS, METRICS, CLASS_COUNTS)


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
    with output.exclusive(out):
        output.clean_stale(out)
        return _curate_locked(source_name, root, out, params, map_shards, plan, publisher)


def _curate_locked(source_name, root, out: Path, params: Params, map_shards, plan, publisher) -> dict:
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
        results = []
        for done, result in enumerate(runner(shard_list, str(staging)), 1):
            results.append({"index": result.get("index", done - 1), "entries": result.get("entries")})
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
        with output.disk_errors(out):
            reject_duplicates(staging, duplicate_entries(results), totals)
        wall = time.perf_counter() - start
        extra = {
            "source": source_name,
            "seconds": round(wall, 3),
            "shards": len(shard_list),
            "images_per_second": round(totals.read / wall, 2) if wall else None,
            "worker_peak_rss_mb": max(peak_rss, _peak_rss_mb()),
            **run_summary(totals.curated, totals.rejected, sources.reasons(source_name)),
        }
        metrics = publisher(staging, out, totals, extra, params.target.classes)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),))


#: prctl option: the signal a process gets when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1
#: How often a worker checks that the process that started the pool is still alive (seconds).
PARENT_POLL_S = 1.0


def die_with_parent(owner_pid: int) -> None:
    """Pool initializer: the worker ends when the run that owns it is killed (even by kill -9).

    A worker's parent is the forkserver, which exits when the owner dies; PR_SET_PDEATHSIG
    kills the worker then. A watchdog thread on the owner's pid covers the rest (a forkserver
    kept by another pool, a non-Linux system), so no orphaned pool keeps computing.
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while True:
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass  # alive, another user's (not ours to judge)
            time.sleep(PARENT_POLL_S)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
