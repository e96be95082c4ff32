"""The `fer-data-pipeline` flow: curate sources, validate them, write the manifest.

This is what the scheduled deployments run (pipelines.serve): the same steps as the DVC
pipeline, with the same output paths, as one Prefect flow run with a subflow per step.
A source that fails to curate does not stop the others; validation then covers the sources
that were curated, and the manifest is written only when every step succeeded, so the run
fails as a whole and nothing downstream picks up unvalidated data.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

import pipelines  # noqa: F401  (environment defaults before prefect)
from fer_data import manifest
from fer_data import params as params_mod
from pipelines.curate_flow import run_curate
from pipelines.runners import Orchestration, dask_cluster
from pipelines.validate_flow import validate_flow

DEFAULT_CURATED = "data/curated"
DEFAULT_REPORT = "reports/validation"
DEFAULT_MANIFEST = "data/validated/manifest.json"


class PipelineFailed(RuntimeError):
    pass


@task(name="write-manifest", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE, persist_result=False)
def manifest_task(report_dir: str, tables: list[tuple[str, str]], params_path: str | None, out: str) -> str:
    p = params_mod.load(params_path)
    doc = manifest.build(Path(report_dir) / "summary.json", [(s, Path(t)) for s, t in tables], p)
    return str(manifest.write(out, doc))


@flow(name="fer-data-pipeline", log_prints=False)
def pipeline_flow(
    sources: list[str] | None = None,
    params_path: str | None = "params.yaml",
    curated_root: str = DEFAULT_CURATED,
    report_dir: str = DEFAULT_REPORT,
    manifest_path: str = DEFAULT_MANIFEST,
) -> dict:
    """Curate SOURCES (default: every source in params.yaml), validate, write the manifest."""
    log = get_run_logger()
    raw = params_mod.read_raw(params_path)
    names = list(sources or (raw.get("sources") or {}).keys())
    if not names:
        raise ValueError("no sources: list them in params.yaml `sources:` or pass `sources`")
    orch = Orchestration.from_params(raw)
    workers = params_mod.resolve(raw, str(params_path)).run.worker_count()
    done, failed = [], []
    with dask_cluster(orch, workers) as run_orch:
        for name in names:
            try:
                run_curate(name, Path(curated_root) / name, params_path=params_path, orch=run_orch)
                done.append(name)
            except Exception as exc:
                log.error("%s: curation failed: %s", name, exc)
                failed.append(name)
    if not done:
        raise PipelineFailed(f"every source failed to curate: {', '.join(failed)}")
    summary = validate_flow(curated_root=curated_root, sources=done, params_path=params_path, report_dir=report_dir)
    if failed:
        raise PipelineFailed(
            f"curation failed for {', '.join(failed)}; validated {', '.join(done)}; no manifest written"
        )
    path = manifest_task(report_dir, [(n, str(Path(curated_root) / n)) for n in done], params_path, manifest_path)
    log.info("pipeline done: %d source(s) curated and validated; manifest %s", len(done), path)
    return summary
