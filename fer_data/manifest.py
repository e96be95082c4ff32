"""The validated-dataset manifest: what training reads, written only after validation passed.

`data/validated/manifest.json` lists, per source, the curated table's part files with their
row counts, the target set and the validation run that passed. It is the last stage of the
DVC pipeline and of the scheduled flow, so it never points at tables that failed validation:
a training job that reads the manifest (instead of globbing data/curated) only sees data a
checkpoint accepted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fer_data.curate import CURATED, METRICS, REJECTS
from fer_data.params import Params
from fer_data.schema import SCHEMA_VERSION


class NotValidated(RuntimeError):
    """The validation summary is missing, failed, or does not cover a table."""


def _parts(folder: Path, base: Path) -> list[dict[str, Any]]:
    return [
        {"path": os.path.relpath(p, base), "rows": pq.ParquetFile(p).metadata.num_rows, "bytes": p.stat().st_size}
        for p in sorted(folder.glob("*.parquet"))
    ]


def build(
    summary_path: str | Path, tables: Sequence[tuple[str, Path]], params: Params, base: str | Path = "."
) -> dict[str, Any]:
    """The manifest for TABLES ((source, curate output dir) pairs); raises NotValidated unless all passed."""
    summary_path = Path(summary_path)
    if not summary_path.exists():
        raise NotValidated(f"{summary_path} does not exist: run `fer-data validate` first")
    summary = json.loads(summary_path.read_text())
    results = summary.get("sources") or {}
    missing = [s for s, _ in tables if s not in results]
    failed = [s for s, _ in tables if s in results and not results[s].get("success")]
    if missing or failed or not summary.get("success"):
        raise NotValidated(
            f"not validated: {', '.join(missing) or '-'}; failed validation: {', '.join(failed) or '-'} "
            f"(see {summary_path.parent / 'index.html'})"
        )
    base = Path(base)
    sources = {}
    for source, folder in tables:
        curated = _parts(folder / CURATED, base)
        sources[source] = {
            "curated": curated,
            "rows": sum(p["rows"] for p in curated),
            "rejects": _parts(folder / REJECTS, base),
            "metrics": os.path.relpath(folder / METRICS, base),
            "class_share": results[source].get("class_share"),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "target_set": params.target.name,
        "classes": list(params.target.classes),
        "validated_at": summary.get("validated_at"),
        "validation_report": os.path.relpath(summary_path.parent / "index.html", base),
        "sources": sources,
    }


def write(path: str | Path, manifest: dict[str, Any]) -> Path:
    """Write atomically, so a reader never sees half a manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
