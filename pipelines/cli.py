"""`fer-data flow ...`, `fer-data serve` and `fer-data run-demo`: the CLI side of the Prefect flows.

The library's `fer-data` command finds these through the `fer_data.commands` entry points
(pyproject.toml) and imports this module only when one of them is named; Prefect is imported
inside the commands only (`import prefect` costs about 2 s).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fer_data.cli import load_params
from fer_data.params import default_path as _params_path

PARAMS_HELP = "params.yaml (default: ./params.yaml)."


def _run(fn: Callable[[], Any]) -> Any:
    """Run FN with a Prefect API available; turn a failed validation into a clear non-zero exit."""
    from fer_data.validate import ValidationFailed
    from pipelines.runners import api

    with api():
        try:
            return fn()
        except ValidationFailed as exc:
            raise click.ClickException(str(exc)) from None


@click.group("flow")
def flow_group() -> None:
    """Run the Prefect flows (runs appear in the Prefect UI; task runner from params.yaml `orchestration`)."""


@flow_group.command("curate")
@click.option("--source", "source_name", required=True, help="Dataset layout (see `fer-data curate --help`).")
@click.option(
    "--root", type=click.Path(exists=True, file_okay=False), help="Dataset folder (default: params sources.NAME.root)."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Curation output folder.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help=PARAMS_HELP)
@click.option("--workers", type=int, help="Parallel workers (default: params run.workers; 0 = all cores).")
@click.option(
    "--task-runner", type=click.Choice(["process", "dask", "thread"]), help="Overrides orchestration.task_runner."
)
@click.option("--dask-address", help="Scheduler of a running Dask cluster (overrides orchestration.dask_address).")
def flow_curate(
    source_name: str,
    root: str | None,
    out_dir: str,
    params_path: str | None,
    workers: int | None,
    task_runner: str | None,
    dask_address: str | None,
) -> None:
    """Curate one source with the `curate` flow (shards as parallel Prefect tasks)."""
    from pipelines.curate_flow import run_curate
    from pipelines.runners import Orchestration

    params_path = _params_path(params_path)
    raw, _ = load_params(params_path)  # refused here, before Prefect starts, in one line
    try:
        orch = Orchestration.from_params(raw, task_runner=task_runner, dask_address=dask_address)
    except ValueError as exc:
        raise click.ClickException(f"{params_path or 'params'}: {exc}") from None
    metrics = _run(lambda: run_curate(source_name, out_dir, root, params_path, workers, orch))
    click.echo(json.dumps(metrics, sort_keys=True))  # one line; the full metrics are in OUT/metrics.json


@flow_group.command("validate")
@click.argument("tables", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--curated-root", default="data/curated", show_default=True, help="Holds one curate output per source.")
@click.option("--source", "sources", multiple=True, help="Only these sources (default: every source in params.yaml).")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help=PARAMS_HELP)
@click.option(
    "--report", "report_dir", default="reports/validation", show_default=True, type=click.Path(file_okay=False)
)
def flow_validate(
    tables: tuple[str, ...], curated_root: str, sources: tuple[str, ...], params_path: str | None, report_dir: str
) -> None:
    """Validate curated tables with the `validate` flow (exit 1 when an expectation fails)."""
    from pipelines.validate_flow import validate_flow

    params_path = _params_path(params_path)
    load_params(params_path)
    summary = _run(
        lambda: validate_flow(
            curated_root=curated_root,
            sources=list(sources) or None,
            tables=list(tables) or None,
            params_path=params_path,
            report_dir=report_dir,
        )
    )
    click.echo(f"validation passed: {Path(report_dir) / 'index.html'}")
    click.echo(json.dumps({k: v["success"] for k, v in summary["sources"].items()}, sort_keys=True))


@flow_group.command("corpus")
@click.option("--curated", "curated_dirs", multiple=True, type=click.Path(exists=True, file_okay=False))
@click.option("--validated", default="data/validated/manifest.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default="data/corpus", show_default=True, type=click.Path(file_okay=False))
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help=PARAMS_HELP)
def flow_corpus(curated_dirs: tuple[str, ...], validated: str, out_dir: str, params_path: str | None) -> None:
    """Build the corpus with the `corpus` flow (see `fer-data corpus --help`)."""
    from fer_data.corpus import CorpusGateFailed
    from pipelines.corpus_flow import corpus_flow

    params_path = _params_path(params_path)
    load_params(params_path)  # every block, the corpus one included, before Prefect starts
    try:
        result = _run(lambda: corpus_flow(out_dir, list(curated_dirs) or None, validated, params_path))
    except (ValueError, CorpusGateFailed) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({k: v["rows"] for k, v in result["splits"].items()}, sort_keys=True))


@flow_group.command("review")
@click.option("--corpus", "corpus_dir", default="data/corpus", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default="data/review/issues", show_default=True, type=click.Path(file_okay=False))
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help=PARAMS_HELP)
def flow_review(corpus_dir: str, out_dir: str, params_path: str | None) -> None:
    """Label review with the `label-review` flow (see `fer-data review --help`)."""
    from pipelines.review_flow import review_flow

    params_path = _params_path(params_path)
    load_params(params_path)  # refused here, before Prefect starts, in one line
    try:
        summary = _run(lambda: review_flow(corpus_dir, out_dir, params_path))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({k: summary[k] for k in ("rows", "flagged", "ambiguous")}, sort_keys=True))


@flow_group.command("train")
@click.option("--corpus", default="data/corpus", show_default=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", default="data/train", show_default=True, type=click.Path(file_okay=False))
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help=PARAMS_HELP)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt when present.")
def flow_train(corpus: str, out_dir: str, params_path: str | None, resume: bool) -> None:
    """Train on a corpus with the `train` flow (= `python -m train fit`; README.md, "Training")."""
    from pipelines.train_flow import train_flow

    params_path = _params_path(params_path)
    load_params(params_path)  # the train: block included (train.params:check_block), before Prefect starts
    metrics = _run(lambda: train_flow(corpus, out_dir, params_path, resume))
    click.echo(json.dumps({s: metrics[s]["accuracy"] for s in ("val", "test") if s in metrics}, sort_keys=True))


@flow_group.command("pipeline")
@click.option("--source", "sources", multiple=True, help="Only these sources (default: every source in params.yaml).")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help=PARAMS_HELP)
def flow_pipeline(sources: tuple[str, ...], params_path: str | None) -> None:
    """Run the scheduled pipeline once now: curate, validate, write data/validated/manifest.json."""
    from pipelines.pipeline_flow import pipeline_flow

    params_path = _params_path(params_path)
    load_params(params_path)
    summary = _run(lambda: pipeline_flow(sources=list(sources) or None, params_path=params_path))
    click.echo(json.dumps({k: v["success"] for k, v in summary["sources"].items()}, sort_keys=True))


@click.command("serve")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help=PARAMS_HELP)
@click.option(
    "--port",
    type=int,
    default=4200,
    show_default=True,
    help="Port of the Prefect server started when PREFECT_API_URL is unset.",
)
@click.option("--check", is_flag=True, help="Print the schedules and their next runs, then exit (no server).")
def serve_cmd(params_path: str | None, port: int, check: bool) -> None:
    """Serve the pipeline as Prefect deployments on the cron schedules in params.yaml `schedules:`."""
    from fer_data import params as params_mod
    from pipelines import serve as serve_mod

    params_path = _params_path(params_path)
    if params_path is None:
        raise click.UsageError("no params.yaml here: pass --params")
    load_params(params_path)
    if check:
        click.echo(serve_mod.describe(params_mod.read_raw(params_path)))
        return
    try:
        serve_mod.serve(params_path, port=port)
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
        sys.exit(130)


@click.command("run-demo")
@click.option("--force", is_flag=True, help="Re-run every stage (dvc repro --force).")
def run_demo(force: bool) -> None:
    """Run the DVC pipeline on the embedded sample data (the README's first command).

    demo trees -> one Prefect `curate` flow per source -> validation (Great Expectations) ->
    manifest -> corpus; one temporary Prefect server serves every stage. Needs a DVC project (runs
    `dvc init` once when .dvc/ is missing).
    """
    import subprocess

    from fer_data import params as params_mod
    from pipelines.runners import api

    dvc = [sys.executable, "-m", "dvc"]
    if not Path("dvc.yaml").exists():
        raise click.ClickException("run it from the project folder (no dvc.yaml here)")
    if not Path(".dvc").exists():
        scm = [] if Path(".git").exists() else ["--no-scm"]
        subprocess.check_call(dvc + ["init", "-q", *scm])
        subprocess.check_call(dvc + ["config", "core.analytics", "false"])
    # `dvc status -q` exits 0 when nothing would run: then no Prefect server is needed (~20 s saved).
    code = 0
    if force or subprocess.call(dvc + ["status", "-q"]) != 0:
        with api():
            code = subprocess.call(dvc + ["repro", *(["--force"] if force else [])])
    else:
        click.echo("Data and pipelines are up to date.")
    click.echo(
        _demo_summary(
            params_mod.read_raw(params_mod.default_path(None)),
            Path("data/curated"),
            Path("reports/validation/summary.json"),
        )
    )
    click.echo("validation report (opens offline): reports/validation/index.html; all metrics: dvc metrics show")
    if code:
        raise click.ClickException(f"dvc repro failed (exit {code})")
    click.echo("curated tables: data/curated/<source>/curated.parquet; validated: data/validated/manifest.json")
    click.echo("for training: data/corpus/manifest.json (steward report: data/corpus/report/index.html)")


def _demo_summary(raw: dict, curated: Path, summary_path: Path) -> str:
    """One line per source: counts from metrics.json and the validation outcome."""
    checks = json.loads(summary_path.read_text())["sources"] if summary_path.exists() else {}
    lines = [f"{'source':<10} {'read':>6} {'curated':>8} {'rejected':>8}  validation  rejects by reason"]
    for name in raw.get("sources") or {}:
        path = curated / name / "metrics.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        ok = {True: "passed", False: "FAILED"}.get((checks.get(name) or {}).get("success"), "-")
        reasons = ", ".join(f"{k} {v}" for k, v in m["rejected_by_reason"].items()) or "-"
        lines.append(f"{name:<10} {m['read']:>6} {m['curated']:>8} {m['rejected']:>8}  {ok:<10}  {reasons}")
    return "\n".join(lines)
