"""Where a flow's tasks run, chosen in params.yaml, and the Prefect API they report to.

    orchestration:
      task_runner: process     # process: all local cores (default) | dask | thread
      dask_address: null       # tcp://scheduler:8786 runs the tasks on that Dask cluster

The flow code never changes: `task_runner()` builds the runner and the flows are called
through `.with_options(task_runner=...)`.

Face work is per-image Python that holds the GIL, so it scales only with processes.
`process` runs the shard tasks on Prefect's thread pool and each task's face work in a
process of `fer_data.curate.worker_pool` (forked from a server that loaded the dlib models
once): 1.65x with 2 workers on 3,000 JAFFE-like images on the 2-core machine (BENCHMARKS.md,
section 6), whereas Prefect's own ProcessPoolTaskRunner spawns every worker afresh (import
prefect, load the models: 7-10 s each). `dask` runs
each task on a single-threaded Dask worker process (a local cluster, or `dask_address`);
`thread` keeps everything in one process (debugging, I/O-bound work).

Task runs report to the Prefect API. Without PREFECT_API_URL, every process that runs tasks
(Dask workers) would start its own temporary server (20-30 s apiece), so `api()` starts one
for the whole run and exports its URL to every process started under it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fer_data.params import Block, Float, Int, ParamsError, Str, param, validated


class OrchestrationParams(Block):
    """params.yaml's `orchestration:` block (declared as a `fer_data.params` entry point in pyproject.toml)."""

    task_runner: Literal["process", "dask", "thread"] = param(
        "process", "process, dask or thread", "process: every local core | dask: a Dask cluster | thread: debugging"
    )
    dask_address: Str | None = param(None, "null or tcp://HOST:PORT", "a running Dask scheduler (null: a local one)")
    io_retries: Int = param(2, "an integer >= 0", "retries of planning and publishing", ge=0)
    io_retry_delay_s: Float = param(5.0, "a number >= 0", "seconds between those retries", ge=0)
    shard_retries: Int = param(0, "an integer >= 0", "retries of a failed shard (0: fail at the first)", ge=0)


@dataclass(frozen=True)
class Orchestration:
    """params.yaml's `orchestration:` block, with command-line overrides applied."""

    task_runner: str = "process"
    dask_address: str | None = None
    io_retries: int = 2
    io_retry_delay_s: float = 5.0
    shard_retries: int = 0

    @classmethod
    def from_params(cls, raw: Mapping[str, Any] | None, **overrides: Any) -> Orchestration:
        block = {**((raw or {}).get("orchestration") or {}), **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls(**validated(OrchestrationParams, block, "orchestration", None).model_dump())
        except ParamsError as exc:
            raise ValueError(str(exc)) from None


def task_runner(orch: Orchestration, workers: int) -> Any:
    """The Prefect task runner for ORCH with WORKERS parallel slots (ignored for a given Dask cluster)."""
    if orch.task_runner in ("process", "thread"):
        # process: the threads only wait on fer_data.curate.worker_pool (see pipelines.curate_flow).
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if orch.dask_address:
        return DaskTaskRunner(address=orch.dask_address)
    return DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(workers))


def local_cluster_kwargs(workers: int) -> dict[str, Any]:
    """One single-threaded worker process per core (the GIL again), no dashboard server."""
    return {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}


@contextlib.contextmanager
def dask_cluster(orch: Orchestration, workers: int) -> Iterator[Orchestration]:
    """For `dask` without an address: one local cluster shared by every flow of a run.

    A LocalCluster per flow run costs seconds; the pipeline flow curates many sources, so it
    starts one here and hands its address to each curate flow.
    """
    if orch.task_runner != "dask" or orch.dask_address:
        yield orch
        return
    from dataclasses import replace

    from distributed import LocalCluster

    with LocalCluster(**local_cluster_kwargs(workers)) as cluster:
        yield replace(orch, dask_address=cluster.scheduler_address)


def api_url() -> str | None:
    """The Prefect API this process talks to, if one is configured."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@contextlib.contextmanager
def api() -> Iterator[str]:
    """Make sure a Prefect API server is running and that child processes know its URL.

    A configured PREFECT_API_URL (a `prefect server start`, or the test harness) is used as it
    is. Otherwise a temporary local server (SQLite under PREFECT_HOME) runs for the duration.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = api_url()
    if url:
        with _exported("PREFECT_API_URL", url):
            yield url
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}), _exported("PREFECT_API_URL", server.api_url):
            try:
                yield server.api_url
            finally:
                drain()
    finally:
        server.stop()


def drain() -> None:
    """Send the logs and events still queued, while the server is up.

    Otherwise they are sent at interpreter exit, to a server that is gone: the connection
    retries then hold the process for over a minute before "Error logging to API".
    """
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def _drain() -> None:
        try:
            pending = APILogWorker.instance().drain()
            if inspect.isawaitable(pending):
                await pending
        except RuntimeError:  # the worker never started
            pass
        pending = EventsWorker.drain_all()
        if inspect.isawaitable(pending):
            await pending

    run_coro_as_sync(_drain())


@contextlib.contextmanager
def _exported(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for processes started inside the block (Dask workers read os.environ)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
