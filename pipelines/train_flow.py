"""The `train` flow: `python -m train fit` as a Prefect flow, so a training run appears beside curation.

One task, because the training loop is one process holding one model (its own checkpoints give it
resume); the flow adds the run record, the logged epochs and a markdown artifact with the scores.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import pipelines  # noqa: F401  (environment defaults before prefect)
from train import fit as fit_mod
from train.params import load


@task(name="fit", cache_policy=NO_CACHE, persist_result=False)
def fit_task(corpus: str, out: str, params_path: str | None, resume: bool) -> dict:
    """Train and score; returns metrics.json's content (files written under OUT)."""
    return fit_mod.fit(corpus, out, load(params_path), resume=resume)


def _markdown(metrics: dict, out: str) -> str:
    lines = [
        f"## Training: {metrics['model']}, {metrics['epochs_run']} epochs (best {metrics['best_epoch']})",
        "",
        f"Output: `{Path(out).resolve()}` (metrics.json, confusion_matrix.csv, plots/, model.pt)",
        "",
        "| split | rows | accuracy | macro F1 |",
        "|---|---|---|---|",
    ]
    for split in ("val", "test"):
        if split in metrics:
            m = metrics[split]
            lines.append(f"| {split} | {m['rows']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |")
    return "\n".join(lines)


@flow(name="train", log_prints=False)
def train_flow(
    corpus: str = "data/corpus", out: str = "data/train", params_path: str | None = "params.yaml", resume: bool = False
) -> dict:
    """Validate params.yaml `train:` first (a bad value fails the run before any work), then train."""
    log = get_run_logger()
    params = load(params_path)
    log.info("training %s on %s into %s (device %s)", params.model, corpus, out, params.device)
    metrics = fit_task(corpus, out, params_path, resume)
    create_markdown_artifact(key="training", markdown=_markdown(metrics, out), description="fer-data training")
    for split in ("val", "test"):
        if split in metrics:
            log.info("%s: accuracy %.4f, macro F1 %.4f", split, metrics[split]["accuracy"], metrics[split]["macro_f1"])
    return metrics
