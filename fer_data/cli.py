"""The `fer-data` command: what users, DVC stages and Prefect deployments call."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from fer_data import __version__, params as params_mod, sources

DEFAULT_PARAMS = "params.yaml"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


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
@click.option("--root", type=click.Path(exists=True, file_okay=False), help="Dataset folder as distributed (default: params sources.NAME.root).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Writes OUT/curated.parquet, OUT/rejects.parquet, OUT/metrics.json.")
@click.option("--params", "params_path", type=click.Path(exists=True, dir_okay=False), help="params.yaml (default: ./params.yaml if present).")
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


@main.command("run-demo")
@click.option("--out", "out_dir", default="data/demo-run", show_default=True, type=click.Path(file_okay=False))
@click.option("--workers", type=int, default=None)
def run_demo(out_dir: str, workers: int | None) -> None:
    """Write the demo trees and curate every source from them (the README's first command)."""
    from dataclasses import replace

    from fer_data.curate import curate as run_curate
    from fer_data.demo import write_demo

    out = Path(out_dir)
    p = _load_params(None)
    if workers is not None:
        p = replace(p, run=replace(p.run, workers=workers))
    roots = write_demo(out / "raw")
    summary = {}
    for name, root in roots.items():
        m = run_curate(name, root, out / "curated" / name, p)
        summary[name] = {k: m[k] for k in ("read", "curated", "rejected", "rejected_by_reason")}
    click.echo(json.dumps(summary, indent=2))
    click.echo(f"curated tables: {out / 'curated'}/<source>/curated.parquet")


if __name__ == "__main__":
    main()
