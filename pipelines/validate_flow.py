"""The `validate` flow: Great Expectations suites over curated tables, with Data Docs and a report.

A failed expectation fails the flow (and the CLI command and DVC stage that called it) with
ValidationFailed, whose message names the failing expectations and the report's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import pipelines  # noqa: F401  (environment defaults before prefect)
from fer_data import params as params_mod
from fer_data import validate as gxv


@task(name="run-checkpoint", cache_policy=NO_CACHE, persist_result=False)
def checkpoint_task(tables: list[gxv.TableRef], params_path: str | None, report_dir: str) -> gxv.Report:
    """Load each table (memory-bounded), run its suites, write Data Docs, index.html and summary.json."""
    raw = params_mod.read_raw(params_path)
    return gxv.validate_tables(tables, params_mod.resolve(raw, str(params_path)), raw, report_dir)


def resolve_tables(
    params_path: str | None, curated_root: str, sources: Sequence[str] | None, tables: Sequence[str] | None
) -> list[gxv.TableRef]:
    """Explicit curate output folders, else CURATED_ROOT/<source> for the named or configured sources."""
    if tables:
        return [gxv.TableRef.from_dir(t) for t in tables]
    return gxv.tables_from_params(params_mod.read_raw(params_path), curated_root, list(sources or ()))


def _markdown(report: gxv.Report) -> str:
    lines = [
        f"## Validation {'passed' if report.success else 'FAILED'}",
        "",
        f"Report: `{report.index_html}` (offline); Data Docs: `{report.report_dir / 'gx' / 'index.html'}`",
        "",
        "| source | status | read | curated | reject rate | face-found rate |",
        "|---|---|---|---|---|---|",
    ]
    for s in report.sources:
        lines.append(
            f"| {s.source} | {'pass' if s.success else 'FAIL'} | {s.metrics.get('read')} | {s.metrics.get('curated')} "
            f"| {s.rates.get('reject_rate')} | {s.rates.get('face_found_rate')} |"
        )
    lines += ["", *[f"- `{f}`" for f in report.failures()]]
    return "\n".join(lines)


@flow(name="validate", log_prints=False)
def validate_flow(
    curated_root: str = "data/curated",
    sources: list[str] | None = None,
    tables: list[str] | None = None,
    params_path: str | None = "params.yaml",
    report_dir: str = "reports/validation",
) -> dict:
    """Validate curated tables; returns summary.json's content, raises ValidationFailed on failure."""
    log = get_run_logger()
    refs = resolve_tables(params_path, curated_root, sources, tables)
    log.info("validating %s into %s", ", ".join(f"{r.source} ({r.path})" for r in refs), report_dir)
    report = checkpoint_task(refs, params_path, report_dir)
    create_markdown_artifact(key="validation", markdown=_markdown(report), description="fer-data validation")
    for s in report.sources:
        log.info(
            "%s: %s; reject rate %s, face-found rate %s, classes %s",
            s.source,
            "passed" if s.success else "FAILED",
            s.rates.get("reject_rate"),
            s.rates.get("face_found_rate"),
            gxv.class_shares(s.class_counts),
        )
    if not report.success:
        raise gxv.ValidationFailed(report)
    log.info("validation passed; report: %s", Path(report.index_html).resolve())
    return report.summary()
