"""The `fer-data` command: what users, DVC stages and Prefect deployments call."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from fer_data import __version__, sources
from fer_data import params as params_mod

DEFAULT_PARAMS = "params.yaml"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # Prefect's HTTP client logs every API request at INFO; Great Expectations its plumbing.
    for noisy in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load_params(path: str | None) -> params_mod.Params:
    if path is None and Path(DEFAULT_PARAMS).exists():
        path = DEFAULT_PARAMS
    return params_mod.load(path)


@click.group()
@click.version_option(__version__)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Curate facial-expression datasets into aligned, validated Parquet tables."""
    _setup_logging(verbose)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--source", "source_names", multiple=True, help="Only these sources (default: all).")
def demo(out_dir: str, source_names: tuple[str, ...]) -> None:
    """Write sample raw trees (one folder per source, native layouts) into OUT_DIR."""
    from fer_data.demo import write_demo

    written = write_demo(out_dir, list(source_names) or None)
    for name, root in written.items():
        click.echo(f"{name}\t{root}")


@main.command()
@click.option("--source", "source_name", required=True, type=click.Choice(sources.names()), help="Dataset layout.")
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False),
    help="Dataset folder as distributed (default: params sources.NAME.root).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Writes OUT/curated.parquet, OUT/rejects.parquet, OUT/metrics.json.",
)
@click.option(
    "--params",
    "params_path",
    type=click.Path(exists=True, dir_okay=False),
    help="params.yaml (default: ./params.yaml if present).",
)
@click.option("--workers", type=int, help="Processes for face work (default: params run.workers; 0 = all cores).")
def curate(source_name: str, root: str | None, out_dir: str, params_path: str | None, workers: int | None) -> None:
    """Curate one dataset. Exits 0 when it ran, whatever it rejected."""
    from dataclasses import replace

    from fer_data.curate import curate as run_curate

    p = _load_params(params_path)
    if workers is not None:
        p = replace(p, run=replace(p.run, workers=workers))
    root = root or p.source(source_name).get("root")
    if not root:
        raise click.UsageError(f"no --root given and params has no sources.{source_name}.root")
    metrics = run_curate(source_name, root, out_dir, p)
    click.echo(json.dumps(metrics, indent=2, sort_keys=True))


@main.command("schema")
@click.option("--rejects", is_flag=True, help="The rejects table instead of the curated one.")
def schema_cmd(rejects: bool) -> None:
    """Print the documented columns of the curated (or rejects) table."""
    from fer_data import schema

    click.echo(schema.describe(schema.REJECTS if rejects else schema.CURATED))


@main.command("validate")
@click.argument("tables", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--curated-root", default="data/curated", show_default=True, help="Holds one curate output folder per source."
)
@click.option("--source", "sources", multiple=True, help="Only these sources (default: every source in params.yaml).")
@click.option(
    "--params",
    "params_path",
    type=click.Path(exists=True, dir_okay=False),
    help="params.yaml (default: ./params.yaml if present).",
)
@click.option(
    "--report",
    "report_dir",
    default="reports/validation",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Writes REPORT/index.html (offline report), REPORT/gx/ (Data Docs), REPORT/summary.json.",
)
def validate_cmd(
    tables: tuple[str, ...], curated_root: str, sources: tuple[str, ...], params_path: str | None, report_dir: str
) -> None:
    """Validate curated tables with Great Expectations; exit 1 when an expectation fails.

    TABLES are `fer-data curate` output folders; without them, CURATED_ROOT/<source> for each
    source in params.yaml (or --source).
    """
    from fer_data import validate as gxv

    if params_path is None and Path(DEFAULT_PARAMS).exists():
        params_path = DEFAULT_PARAMS
    raw = params_mod.read_raw(params_path)
    try:
        refs = [gxv.TableRef.from_dir(t) for t in tables] or gxv.tables_from_params(raw, curated_root, sources)
        report = gxv.validate_tables(refs, params_mod.resolve(raw), raw, report_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if not report.success:
        raise click.ClickException(report.failure_message())
    click.echo(f"validation passed ({len(report.sources)} source(s)): {report.index_html}")


@main.command("manifest")
@click.option("--curated-root", default="data/curated", show_default=True)
@click.option("--source", "sources", multiple=True, help="Only these sources (default: every source in params.yaml).")
@click.option(
    "--params",
    "params_path",
    type=click.Path(exists=True, dir_okay=False),
    help="params.yaml (default: ./params.yaml if present).",
)
@click.option(
    "--report", "report_dir", default="reports/validation", show_default=True, type=click.Path(file_okay=False)
)
@click.option(
    "--out", "out_path", default="data/validated/manifest.json", show_default=True, type=click.Path(dir_okay=False)
)
def manifest_cmd(
    curated_root: str, sources: tuple[str, ...], params_path: str | None, report_dir: str, out_path: str
) -> None:
    """List the validated tables for training; refuses (exit 1) unless validation passed for all of them."""
    from fer_data import manifest

    if params_path is None and Path(DEFAULT_PARAMS).exists():
        params_path = DEFAULT_PARAMS
    raw = params_mod.read_raw(params_path)
    names = list(sources) or list((raw.get("sources") or {}).keys())
    tables = [(n, Path(curated_root) / n) for n in names]
    try:
        doc = manifest.build(Path(report_dir) / "summary.json", tables, params_mod.resolve(raw))
    except manifest.NotValidated as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"manifest: {manifest.write(out_path, doc)} ({sum(s['rows'] for s in doc['sources'].values())} rows)")


@main.command("drift")
@click.option(
    "--reference", help="The training corpus (`fer-data corpus` output), curated rows, or a saved profile (.npz)."
)
@click.option("--batch", "batch", help="Production batch: folder of images/videos (labels optional) or a Parquet file.")
@click.option("--profile", "profile_of", help="Save the reference profile of this corpus to --out FILE instead.")
@click.option(
    "--out", "out", required=True, help="Report folder (drift.json, index.html); with --profile, the profile file."
)
@click.option("--model", type=click.Path(exists=True, dir_okay=False), help="TorchScript model (default: drift.model).")
@click.option(
    "--params",
    "params_path",
    type=click.Path(exists=True, dir_okay=False),
    help="params.yaml (default: ./params.yaml if present).",
)
def drift_cmd(
    reference: str | None,
    batch: str | None,
    profile_of: str | None,
    out: str,
    model: str | None,
    params_path: str | None,
) -> None:
    """Check a production batch against the training data; exit 1 when a drift check fails.

    `fer-data drift --reference DIR --batch PATH --out DIR` writes DIR/drift.json (every check:
    statistic, p-value or distance, threshold, verdict) and DIR/index.html (the report).
    `fer-data drift --profile CORPUS --out FILE` saves the reference profile, so later checks
    never re-read the corpus.
    """
    from fer_data.drift import run

    if params_path is None and Path(DEFAULT_PARAMS).exists():
        params_path = DEFAULT_PARAMS
    raw = params_mod.read_raw(params_path)
    if profile_of:
        if reference or batch:
            raise click.UsageError("--profile saves a profile: it takes no --reference or --batch")
    elif not (reference and batch):
        raise click.UsageError("give --reference and --batch (or --profile CORPUS)")
    try:
        if profile_of:
            click.echo(f"profile: {run.save_profile(profile_of, out, raw)}")
            return
        doc = run.check_batch(reference, batch, out, raw, model)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"drift: {doc['verdict']} ({', '.join(doc['failed_checks']) or 'every check passed'}); report {out}/index.html"
    )
    if not doc["passed"]:
        sys.exit(1)


@main.command("run-demo")
@click.option("--force", is_flag=True, help="Re-run every stage (dvc repro --force).")
def run_demo(force: bool) -> None:
    """Run the DVC pipeline on the embedded sample data (the README's first command).

    demo trees -> one Prefect `curate` flow per source -> validation (Great Expectations) ->
    manifest; one temporary Prefect server serves every stage. Needs a DVC project (runs
    `dvc init` once when .dvc/ is missing).
    """
    import subprocess

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
            params_mod.read_raw(DEFAULT_PARAMS), Path("data/curated"), Path("reports/validation/summary.json")
        )
    )
    click.echo("validation report (opens offline): reports/validation/index.html; all metrics: dvc metrics show")
    if code:
        raise click.ClickException(f"dvc repro failed (exit {code})")
    click.echo("curated tables: data/curated/<source>/curated.parquet; for training: data/validated/manifest.json")


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


def _add_pipeline_commands() -> None:
    """`fer-data flow ...` and `fer-data serve` (they import Prefect only when run)."""
    from pipelines.cli import flow_group, serve_cmd

    main.add_command(flow_group)
    main.add_command(serve_cmd)


_add_pipeline_commands()


if __name__ == "__main__":
    main()
