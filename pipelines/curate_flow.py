"""The `curate` flow: one source, its shards curated as parallel Prefect tasks.

It runs the engine (fer_data.curate.curate) with Prefect supplying the steps: planning and
publishing are tasks with retries (they touch the dataset and output folders, which may sit
on network storage), and each shard is a task on the task runner params.yaml picks
(pipelines.runners). With the `process` runner a shard task hands its face work to a process
of the engine's worker pool and waits for it, so shards run on every core. Tasks receive
shard descriptors and return count dicts: no image crosses a process boundary or lands in
Prefect's result store, and nothing is cached (`NO_CACHE`), so a DVC stage, which deletes
its outputs before running, always rewrites them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from fer_data import curate as engine
from fer_data import params as params_mod
from fer_data import sources
from fer_data.params import Params
from fer_data.records import face_found_counts
from pipelines.runners import Orchestration
from pipelines.runners import task_runner as make_task_runner

TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="plan-shards", retries=2, retry_delay_seconds=5, **TASK_OPTIONS)
def plan_task(source_name: str, root: str, params: Params) -> list[dict[str, Any]]:
    """List the dataset and cut it into shard descriptors (file names or byte ranges)."""
    return engine.plan_shards(source_name, root, params)


#: The `process` runner's worker pool while a curate flow runs in this process (None: run shards in place).
_POOL: Executor | None = None


@contextlib.contextmanager
def worker_pool(runner: str, workers: int) -> Iterator[None]:
    """For the `process` runner: the engine's forkserver pool, shared by this flow's shard tasks."""
    global _POOL
    if runner != "process" or workers <= 1:
        yield
        return
    with engine.worker_pool(workers) as pool:
        _POOL = pool
        try:
            yield
        finally:
            _POOL = None


@task(name="curate-shard", task_run_name="{source_name}-shard-{index}", **TASK_OPTIONS)
def shard_task(source_name: str, root: str, params: Params, shard: dict[str, Any], index: int, staging: str) -> dict:
    """Curate one shard into part files under STAGING; returns its counts only.

    In a worker-pool process when the flow has one (process runner), else right here (a Dask
    worker process, or a thread).
    """
    pool = _POOL
    if pool is not None:
        return pool.submit(engine.run_shard, source_name, root, params, shard, index, staging).result()
    return engine.run_shard(source_name, root, params, shard, index, staging)


@task(name="publish", retries=2, retry_delay_seconds=5, **TASK_OPTIONS)
def publish_task(staging: Path, out_dir: Path, totals: engine.Stats, extra: dict, classes: tuple[str, ...]) -> dict:
    """Move the finished tables and metrics into place (safe to retry)."""
    return engine.publish(staging, out_dir, totals, extra, classes)


class ShardProgress:
    """Run-log lines (every ~10 % or 15 s) and a Prefect progress artifact while shards finish."""

    def __init__(self, source_name: str, total: int):
        self.log = get_run_logger()
        self.source_name, self.total = source_name, total
        self.start = self.last_log = time.perf_counter()
        self.read = self.curated = self.done = 0
        self.artifact = create_progress_artifact(
            0.0, key=f"curate-{_slug(source_name)}-progress", description=f"{source_name}: shards curated (%)"
        )

    def update(self, counts: dict) -> None:
        self.done += 1
        self.read += counts["read"]
        self.curated += counts["curated"]
        now = time.perf_counter()
        update_progress_artifact(self.artifact, 100.0 * self.done / self.total)
        if self.done == self.total or now - self.last_log >= 15 or self.done % max(1, self.total // 10) == 0:
            self.last_log = now
            elapsed = now - self.start
            eta = elapsed / self.done * (self.total - self.done)
            self.log.info(
                "%s: %d/%d shards, %d read, %d curated, %.1f img/s, ETA %.0f s",
                self.source_name,
                self.done,
                self.total,
                self.read,
                self.curated,
                self.read / elapsed if elapsed else 0.0,
                eta,
            )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower())


def _cancel_and_wait(futures: list) -> None:
    """After a shard failed: drop shards not started yet, let running ones finish before cleanup."""
    for fut in futures:
        wrapped = getattr(fut, "wrapped_future", None)
        if wrapped is not None and hasattr(wrapped, "cancel"):
            wrapped.cancel()
    for fut in futures:
        with contextlib.suppress(Exception):
            fut.wait()


def submit_shards(source_name: str, root: str, params: Params, retries: int = 0):
    """A `map_shards` for the engine: each shard a task on the flow's runner, yielded as they finish."""

    def run(shards: list[dict[str, Any]], staging: str) -> Iterator[dict]:
        runner = shard_task.with_options(retries=retries) if retries else shard_task
        futures = [runner.submit(source_name, root, params, shard, i, staging) for i, shard in enumerate(shards)]
        progress = ShardProgress(source_name, len(futures))
        try:
            for fut in as_completed(futures):
                counts = fut.result()
                progress.update(counts)
                yield counts
        except BaseException:
            _cancel_and_wait(futures)
            raise

    return run


def _summary(source_name: str, m: dict) -> str:
    reasons = ", ".join(f"{k}: {v}" for k, v in m["rejected_by_reason"].items()) or "none"
    found, searched = face_found_counts(m["curated"], m["rejected_by_reason"], sources.reasons(source_name))
    return (
        f"{source_name}: {m['read']} read, faces found in {found} of {searched} searched, {m['curated']} curated "
        f"({m['unaligned']} kept unaligned), {m['rejected']} rejected ({reasons}); "
        f"{m['seconds']:.1f} s, {m['images_per_second'] or 0:.1f} img/s"
    )


def curate_here(source: str, root: str | Path, out: str | Path, p: Params, orch: Orchestration) -> dict:
    """The engine with Prefect's steps, inside a running flow: shards as tasks on that flow's runner."""
    retry = {"retries": orch.io_retries, "retry_delay_seconds": orch.io_retry_delay_s}
    with worker_pool(orch.task_runner, p.run.worker_count()):
        return engine.curate(
            source,
            root,
            out,
            p,
            submit_shards(source, str(root), p, orch.shard_retries),
            plan=plan_task.with_options(**retry),
            publisher=publish_task.with_options(**retry),
        )


@flow(name="curate", log_prints=False)
def curate_flow(
    source: str,
    out: str,
    root: str | None = None,
    params_path: str | None = "params.yaml",
    workers: int | None = None,
    task_runner: str | None = None,
) -> dict:
    """Curate SOURCE (dataset at ROOT, default params `sources.<source>.root`) into OUT; returns the metrics.

    Call it through `run_curate`, which gives it the task runner TASK_RUNNER names.
    """
    log = get_run_logger()
    raw = params_mod.read_raw(params_path)
    p = params_mod.with_workers(params_mod.resolve(raw, str(params_path)), workers)
    root = root or p.source(source).get("root")
    if not root:
        raise ValueError(f"no root given and params has no sources.{source}.root")
    orch = Orchestration.from_params(raw, task_runner=task_runner)
    log.info(
        "%s: curating %s into %s (%d worker(s), %s runner)", source, root, out, p.run.worker_count(), orch.task_runner
    )
    metrics = curate_here(source, root, out, p, orch)
    text = _summary(source, metrics)
    log.info(text)
    create_markdown_artifact(
        key=f"curate-{_slug(source)}", description=f"{source} curation counts", markdown=_markdown(source, out, metrics)
    )
    return metrics


def _markdown(source: str, out: str, m: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in m["rejected_by_reason"].items()) or "| (none) | 0 |"
    labels = "\n".join(f"| {k} | {v} |" for k, v in m["curated_by_label"].items())
    return (
        f"## {source}\n\nOutput: `{out}`\n\n| read | curated | unaligned | rejected | img/s |\n|---|---|---|---|---|\n"
        f"| {m['read']} | {m['curated']} | {m['unaligned']} | {m['rejected']} | {m['images_per_second']} |\n\n"
        f"### Rejects by reason\n\n| reason | count |\n|---|---|\n{rows}\n\n"
        f"### Curated by label\n\n| label | count |\n|---|---|\n{labels}\n"
    )


def run_curate(
    source: str,
    out: str | Path,
    root: str | None = None,
    params_path: str | None = "params.yaml",
    workers: int | None = None,
    orch: Orchestration | None = None,
) -> dict:
    """Call the curate flow with the task runner params.yaml (or ORCH) chooses."""
    raw = params_mod.read_raw(params_path)
    orch = orch or Orchestration.from_params(raw)
    count = params_mod.with_workers(params_mod.resolve(raw, str(params_path)), workers).run.worker_count()
    runner = make_task_runner(orch, count)
    return curate_flow.with_options(task_runner=runner)(
        source=source, out=str(out), root=root, params_path=params_path, workers=workers, task_runner=orch.task_runner
    )


@flow(name="curate-batch", log_prints=False, validate_parameters=False)
def curate_batch_flow(source: str, root: str, out: str, params: Params, orch: dict[str, Any]) -> dict:
    """Curate with params built in code (a drift batch: the inbox source and its ingest settings)."""
    return curate_here(source, root, out, params, Orchestration(**orch))


def curator(orch: Orchestration):
    """An `engine.curate`-shaped function that runs on ORCH's task runner (process pool, Dask cluster, threads).

    What `fer_data.drift.ingest` is given by the drift flow, so a production batch is curated where
    the datasets are: on every local core, or on the cluster params.yaml names.
    """

    def run(source: str, root: str | Path, out: str | Path, params: Params) -> dict:
        runner = make_task_runner(orch, params.run.worker_count())
        return curate_batch_flow.with_options(task_runner=runner)(source, str(root), str(out), params, asdict(orch))

    return run
