"""The `fer-data` command: what users, DVC stages and Prefect deployments call.

The library's own commands are defined here. Other packages add theirs through the
`fer_data.commands` entry-point group (fer_data.plugins; `pipelines` adds `flow`, `serve` and
`run-demo`), loaded only when named, so the library never imports orchestration and
`fer-data curate` starts without Prefect.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from fer_data import __version__, plugins, sources
from fer_data import params as params_mod


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # Prefect's HTTP client logs every API request at INFO; Great Expectations its plumbing.
    for noisy in ("httpx", "httpcore", "great_expectations", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def load_params(path: str | None) -> tuple[dict, params_mod.Params]:
    """PATH (default ./params.yaml) as written and resolved; a bad file ends the command with its one-line message."""
    try:
        return params_mod.read(params_mod.default_path(path))
    except params_mod.ParamsError as exc:
        raise click.ClickException(str(exc)) from None


def plugin_commands() -> dict[str, str]:
    """Subcommand name -> "module:attr" of the commands other packages add (fer_data.plugins)."""
    return plugins.declared(plugins.COMMANDS)


class PluginGroup(click.Group):
    """A click group that also offers the commands other packages add, importing one only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(plugin_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        target = plugin_commands().get(cmd_name) if command is None else None
        if target is None:
            return command
        try:
            return plugins.load(target)
        except ImportError as exc:  # e.g. the pipeline extras (Prefect, DVC) are not installed
            raise click.ClickException(f"`fer-data {cmd_name}` needs {target}: {exc}") from None


#: The `--params` option of every command that reads params.yaml (load_params applies the default).
params_option = click.option(
    "--params",
    "params_path",
    type=click.Path(exists=True, dir_okay=False),
    help="params.yaml (default: ./params.yaml if present).",
)


@click.group(cls=PluginGroup)
@click.version_option(__version__)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Curate facial-expression datasets into aligned, validated Parquet tables."""
    _setup_logging(verbose)


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--source", "source_names", multiple=True, help="Only these sources (default: all).")
@click.option(
    "--decisions",
    type=click.Path(dir_okay=False),
    help="Also create this label-review decisions file, header only, when it does not exist (never overwritten).",
)
def demo(out_dir: str, source_names: tuple[str, ...], decisions: str | None) -> None:
    """Write sample raw trees (one folder per source, native layouts) into OUT_DIR."""
    from fer_data.demo import write_demo

    written = write_demo(out_dir, list(source_names) or None)
    for name, root in written.items():
        click.echo(f"{name}\t{root}")
    if decisions:
        from fer_data.corpus.decisions import write_empty

        click.echo(f"decisions\t{decisions}{' (created)' if write_empty(decisions) else ''}")


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
@params_option
@click.option("--workers", type=int, help="Processes for face work (default: params run.workers; 0 = all cores).")
def curate(source_name: str, root: str | None, out_dir: str, params_path: str | None, workers: int | None) -> None:
    """Curate one dataset. Exits 0 when it ran, whatever it rejected."""
    from fer_data.curate import curate as run_curate
    from fer_data.output import OutputError

    p = params_mod.with_workers(load_params(params_path)[1], workers)
    root = root or p.source(source_name).get("root")
    if not root:
        raise click.UsageError(f"no --root given and params has no sources.{source_name}.root")
    try:
        metrics = run_curate(source_name, root, out_dir, p)
    except OutputError as exc:  # busy, full or read-only output: one line, the real cause
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(metrics, indent=2, sort_keys=True))


@main.command("schema")
@click.option("--rejects", is_flag=True, help="The rejects table instead of the curated one.")
def schema_cmd(rejects: bool) -> None:
    """Print the documented columns of the curated (or rejects) table."""
    from fer_data import schema

    click.echo(schema.describe(schema.REJECTS if rejects else schema.CURATED))


@main.command("reasons")
@click.option(
    "--source", "source_name", type=click.Choice(sources.names()), help="Only what a run of this source gives."
)
def reasons_cmd(source_name: str | None) -> None:
    """List the reject reasons: code, kind (data | policy | no_face) and meaning."""
    for code, reason in sorted(sources.reasons(source_name).items()):
        click.echo(f"{code:<26} {reason.kind.value:<8} {reason.meaning}")
    click.echo("any other code: a data problem (counted in the reject rate)")


@main.command("params")
@click.option("--source", "source_names", multiple=True, type=click.Choice(sources.names()), help="Only these sources.")
def params_cmd(source_names: tuple[str, ...]) -> None:
    """Document every key of the curation blocks and of each source's block, from their schemas."""
    blocks = [(params_mod.LabelsParams, "labels"), (params_mod.FaceParams, "faces")]
    blocks += [(params_mod.AlignParams, "align"), (params_mod.RunParams, "run")]
    if source_names:
        blocks = []
    for name in source_names or sources.names():
        blocks.append((sources.get(name).params_model, f"sources.{name}"))
    for model, where in blocks:
        click.echo("\n".join(params_mod.document(model, where)))


@main.command("validate")
@click.argument("tables", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--curated-root", default="data/curated", show_default=True, help="Holds one curate output folder per source."
)
@click.option("--source", "sources", multiple=True, help="Only these sources (default: every source in params.yaml).")
@params_option
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

    raw, p = load_params(params_path)
    try:
        refs = [gxv.TableRef.from_dir(t) for t in tables] or gxv.tables_from_params(raw, curated_root, sources)
        report = gxv.validate_tables(refs, p, raw, report_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if not report.success:
        raise click.ClickException(report.failure_message())
    click.echo(f"validation passed ({len(report.sources)} source(s)): {report.index_html}")


@main.command("manifest")
@click.option("--curated-root", default="data/curated", show_default=True)
@click.option("--source", "sources", multiple=True, help="Only these sources (default: every source in params.yaml).")
@params_option
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

    raw, p = load_params(params_path)
    names = list(sources) or list((raw.get("sources") or {}).keys())
    tables = [(n, Path(curated_root) / n) for n in names]
    try:
        doc = manifest.build(Path(report_dir) / "summary.json", tables, p)
    except manifest.NotValidated as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"manifest: {manifest.write(out_path, doc)} ({sum(s['rows'] for s in doc['sources'].values())} rows)")


@main.command("corpus")
@click.option(
    "--curated",
    "curated_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="`fer-data curate` output folders (default: the tables in --validated).",
)
@click.option(
    "--validated",
    default="data/validated/manifest.json",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Validated-dataset manifest read when no --curated is given: only validated tables are published.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Corpus folder.")
@params_option
def corpus_cmd(curated_dirs: tuple[str, ...], validated: str, out_dir: str, params_path: str | None) -> None:
    """Merge curated tables into leak-free train/val/test shards (OUT/manifest.json, written last)."""
    from fer_data import corpus

    raw, _ = load_params(params_path)
    roots = {k: (v or {}).get("root") for k, v in (raw.get("sources") or {}).items()}
    try:
        corpus.resolve(raw)  # the corpus block, before reading anything
        if curated_dirs:
            tables = [corpus.table_from_dir(d) for d in curated_dirs]
            tables = [corpus.Table(t.name, t.path, roots.get(t.name)) for t in tables]
        else:
            tables = corpus.tables_from_validated(validated, raw)
        manifest = corpus.build_corpus(tables, out_dir, raw)
    except (ValueError, corpus.CorpusGateFailed) as exc:
        raise click.ClickException(str(exc)) from None
    rows = {s: v["rows"] for s, v in manifest["splits"].items()}
    click.echo(f"corpus: {Path(out_dir) / 'manifest.json'} {json.dumps(rows)}")


@main.command("drift")
@click.option(
    "--reference", help="The training corpus (`fer-data corpus` output), curated rows, or a saved profile (.npz)."
)
@click.option("--batch", "batch", help="Production batch: folder of images/videos (labels optional) or a Parquet file.")
@click.option("--profile", "profile_of", help="Save the reference profile of this corpus to --out FILE instead.")
@click.option(
    "--out", "out", required=True, help="Report folder (drift.json, index.html); with --profile, the profile file."
)
@click.option(
    "--model",
    type=click.Path(exists=True, dir_okay=False),
    help="Model: .pt2 (torch.export) or TorchScript (default: drift.model).",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when a check fails (the verdict is in drift.json).")
@params_option
def drift_cmd(
    reference: str | None,
    batch: str | None,
    profile_of: str | None,
    out: str,
    model: str | None,
    exit_zero: bool,
    params_path: str | None,
) -> None:
    """Check a production batch against the training data; exit 1 when a drift check fails.

    `fer-data drift --reference DIR --batch PATH --out DIR` writes DIR/drift.json (every check:
    statistic, p-value or distance, threshold, verdict) and DIR/index.html (the report).
    `fer-data drift --profile CORPUS --out FILE` saves the reference profile, so later checks
    never re-read the corpus.
    """
    from fer_data.drift import run

    raw, _ = load_params(params_path)
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
    if not doc["passed"] and not exit_zero:
        sys.exit(1)


@main.command("review")
@click.option(
    "--corpus", "corpus_dir", required=True, type=click.Path(exists=True, file_okay=False), help="Corpus folder."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Review output folder.")
@params_option
def review_cmd(corpus_dir: str, out_dir: str, params_path: str | None) -> None:
    """Find likely mislabelled and ambiguous training faces: OUT/label_issues.parquet and the page OUT/index.html."""
    from fer_data.review.build import review

    raw, _ = load_params(params_path)  # every block, the review block included, before any work
    try:
        summary = review(corpus_dir, out_dir, raw)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    keys = ("rows", "flagged", "ambiguous", "suggested", "estimated_noise_rate")
    click.echo(json.dumps({k: summary[k] for k in keys} | {"oof_accuracy": summary["oof"]["accuracy"]}))
    click.echo(f"review page (opens offline): {Path(out_dir) / 'index.html'}")


if __name__ == "__main__":
    main()
