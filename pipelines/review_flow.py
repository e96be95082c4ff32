"""The `label-review` flow: out-of-fold models and confident learning over the corpus (fer_data.review).

One task runs the library's review (K model trainings on a memory-mapped image cache: it gains
nothing from being cut into tasks that would pass arrays around); the flow puts the run in the
Prefect UI with a summary artifact. Nothing is cached (`NO_CACHE`): a DVC stage deletes its
outputs before running, so the review must always write them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import pipelines  # noqa: F401  (environment defaults before prefect)
from fer_data import params as params_mod
from fer_data.review.build import review

DEFAULT_CORPUS = "data/corpus"
DEFAULT_OUT = "data/review/issues"


@task(name="review-labels", cache_policy=NO_CACHE, persist_result=False)
def review_task(corpus: str, out: str, params_path: str | None) -> dict[str, Any]:
    return review(corpus, out, params_mod.read_raw(params_path))


def _markdown(out: str, s: dict[str, Any]) -> str:
    o = s["oof"]
    return "\n".join(
        [
            f"## Label review `{out}`",
            "",
            f"- train rows: {s['rows']}; flagged: {s['flagged']}; ambiguous: {s['ambiguous']}",
            f"- suggested: relabel {s['suggested']['relabel']}, drop {s['suggested']['drop']}",
            f"- estimated noise rate: {s['estimated_noise_rate']}",
            f"- out-of-fold model: {o['model']}, {o['folds']} folds, accuracy {o['accuracy']} ({o['seconds']} s)",
            f"- review page: `{Path(out) / 'index.html'}`",
        ]
    )


@flow(name="label-review", log_prints=False)
def review_flow(corpus: str = DEFAULT_CORPUS, out: str = DEFAULT_OUT, params_path: str | None = "params.yaml"):
    """Review CORPUS's train split into OUT; returns the summary (summary.json)."""
    log = get_run_logger()
    log.info("label review: %s -> %s", corpus, out)
    summary = review_task(corpus, out, params_path)
    create_markdown_artifact(key="label-review", markdown=_markdown(out, summary), description="fer-data review")
    log.info("label review: %d flagged of %d", summary["flagged"], summary["rows"])
    return summary
