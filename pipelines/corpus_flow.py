"""The `corpus` flow: the validated curated tables merged into leak-free shards (fer_data.corpus).

One task runs the library's build (it streams the tables twice and keeps only per-row
metadata, so it gains nothing from being cut into tasks that would pass arrays around); the
flow adds the run to the Prefect UI with a summary artifact. Nothing is cached (`NO_CACHE`):
a DVC stage deletes its outputs before running, so the build must always write them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import pipelines  # noqa: F401  (environment defaults before prefect)
from fer_data import corpus
from fer_data import params as params_mod

DEFAULT_OUT = "data/corpus"
DEFAULT_VALIDATED = "data/validated/manifest.json"


def resolve_tables(curated: Sequence[str] | None, validated: str, raw: dict[str, Any]) -> list[corpus.Table]:
    """Explicit curate output folders (roots from params), else the validated manifest's tables."""
    if not curated:
        return corpus.tables_from_validated(validated, raw)
    roots = {k: (v or {}).get("root") for k, v in (raw.get("sources") or {}).items()}
    tables = [corpus.table_from_dir(d) for d in curated]
    return [corpus.Table(t.name, t.path, roots.get(t.name)) for t in tables]


@task(name="build-corpus", cache_policy=NO_CACHE, persist_result=False)
def build_task(curated: list[str] | None, validated: str, out: str, params_path: str | None) -> dict[str, Any]:
    raw = params_mod.read_raw(params_path)
    corpus.resolve(raw)  # the corpus block, before reading anything
    manifest = corpus.build_corpus(resolve_tables(curated, validated, raw), out, raw)
    return {"splits": manifest["splits"], "metrics": json.loads((Path(out) / "metrics.json").read_text())}


def _markdown(out: str, result: dict[str, Any]) -> str:
    m = result["metrics"]
    lines = [
        f"## Corpus `{out}`",
        "",
        "| split | rows | " + " | ".join(next(iter(result["splits"].values()))["class_counts"]) + " |",
        "|---|---|" + "---|" * len(next(iter(result["splits"].values()))["class_counts"]),
    ]
    for split, s in result["splits"].items():
        lines.append(f"| {split} | {s['rows']} | " + " | ".join(str(v) for v in s["class_counts"].values()) + " |")
    d, i = m["duplicates"], m["identities"]
    lines += [
        "",
        f"- rows in: {m['rows_in']}, kept: {m['rows_kept']}, dropped: {m['dropped_by_reason']}",
        f"- duplicate groups: {d['groups']} ({d['rows_in_groups']} rows), label conflicts: {d['label_conflict_groups']}",
        f"- identities: {i['identities']} ({i['cross_source']} across sources); leak groups: {m['leak_groups']['count']}",
        f"- steward report: `{Path(out) / 'report' / 'index.html'}`",
    ]
    return "\n".join(lines)


@flow(name="corpus", log_prints=False)
def corpus_flow(
    out: str = DEFAULT_OUT,
    curated: list[str] | None = None,
    validated: str = DEFAULT_VALIDATED,
    params_path: str | None = "params.yaml",
) -> dict[str, Any]:
    """Build the corpus into OUT; returns the per-split rows and class counts, and the metrics."""
    log = get_run_logger()
    log.info("corpus: %s -> %s", ", ".join(curated or [validated]), out)
    result = build_task(list(curated or []) or None, validated, out, params_path)
    create_markdown_artifact(key="corpus", markdown=_markdown(out, result), description="fer-data corpus")
    log.info("corpus: %s", {k: v["rows"] for k, v in result["splits"].items()})
    return result
