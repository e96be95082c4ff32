"""The corpus steward page on growing corpora: time, peak memory and page size against rows.

The page must stay a few MB and the report step must not hold the corpus in memory, whatever
the corpus size. A template corpus (`fer-data corpus` on the curated demo data, built here unless
--template names one) is tiled to N rows: every shard row and groups.parquet row repeated with
new sample ids, shards written with the project's default row groups (2,048 rows). Each size is
reported on in a fresh process (peak RSS: its VmHWM), interleaved over --repeats, medians kept.

    .venv/bin/python bench/bench_report.py --rows 3589 35887 143548 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP = 2048  # corpus.shards.row_group_rows default


def build_template(work: Path) -> Path:
    """`fer-data demo` + curate (JAFFE files, FER2013 CSV, CK+ files) + the corpus build, in WORK."""
    from fer_data import corpus, params
    from fer_data.curate import curate
    from fer_data.demo import write_demo

    raw = work / "raw"
    names = ["jaffe", "fer2013", "ckplus"]
    write_demo(raw, names)
    p = params.resolve({"run": {"workers": 1}})
    tables = []
    for name in names:
        curate(name, raw / name, work / "curated" / name, p)
        tables.append(corpus.Table(name, work / "curated" / name, str(raw / name)))
    corpus.build_corpus(tables, work / "template", {"corpus": {"identities": {"cluster": False}}})
    return work / "template"


def _new_ids(ids: pa.Array, copy: int) -> pa.Array:
    return pa.array([hashlib.sha1(f"{s}/{copy}".encode()).hexdigest()[:16] for s in ids.to_pylist()])


def tile(template: Path, rows: int, out: Path) -> Path:
    """TEMPLATE repeated to about ROWS kept rows, as a corpus folder OUT (manifest rows updated)."""
    manifest = json.loads((template / "manifest.json").read_text())
    kept = sum(s["rows"] for s in manifest["shards"])
    copies = max(1, round(rows / kept))
    for entry in manifest["shards"]:
        table = pq.read_table(template / entry["path"])
        path = out / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        copied = (table.set_column(0, table.schema.field(0), _new_ids(table["sample_id"], c)) for c in range(copies))
        _write(path, table.schema, copied)
        entry["rows"] = entry["rows"] * copies
    groups = pq.read_table(template / "groups.parquet")
    _write(out / "groups.parquet", groups.schema, (_group_copy(groups, c) for c in range(copies)))
    for split in manifest["splits"].values():
        split["rows"] *= copies
        split["class_counts"] = {k: v * copies for k, v in split["class_counts"].items()}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _write(path: Path, schema: pa.Schema, tables) -> None:
    """TABLES written in row groups of ROW_GROUP rows, as a corpus build writes them (not one per copy)."""
    with pq.ParquetWriter(path, schema) as writer:
        pending, rows = [], 0
        for t in tables:
            pending.append(t)
            rows += len(t)
            if rows >= 4 * ROW_GROUP:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP)
                pending, rows = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP)


def _group_copy(groups: pa.Table, c: int) -> pa.Table:
    """Copy C of groups.parquet: its own sample ids, duplicate groups and identities (sizes stay realistic)."""
    if not c:
        return groups
    g = groups
    for col in ("sample_id", "dup_group"):
        i = g.schema.get_field_index(col)
        g = g.set_column(i, g.schema.field(i), _new_ids(g[col], c))
    i = g.schema.get_field_index("identity")
    ident = g["identity"]
    tagged = pc.if_else(pc.is_valid(ident), pc.binary_join_element_wise(ident, pa.scalar(f"#{c}"), ""), ident)
    return g.set_column(i, g.schema.field(i), tagged)


# Peak memory is the child's VmHWM: getrusage's ru_maxrss survives exec, so a child forked from this
# (large) process would report the parent's size.
CHILD = """
import re, sys, time
from pathlib import Path
from fer_data.reports.corpus import write_corpus_report
t = time.perf_counter()
out = write_corpus_report(sys.argv[1], sys.argv[2])
hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(time.perf_counter() - t, hwm / 1024, out.stat().st_size)
"""


def measure(corpus: Path) -> tuple[float, float, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(corpus), str(corpus / "report" / "index.html")],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rss, size = done.stdout.split()
    return float(seconds), float(rss), int(size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[3589, 35887])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--template", type=Path, help="a corpus folder to tile (default: built from the demo data)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        template = args.template or build_template(work / "demo")
        print(f"template: {template} ({time.perf_counter() - t:.0f} s)", flush=True)
        corpora = {n: tile(template, n, work / f"c{n}") for n in args.rows}
        runs: dict[int, list] = {n: [] for n in args.rows}
        for _ in range(args.repeats):
            for n, path in corpora.items():
                runs[n].append(measure(path))
        print("| rows (kept) | shard MB | report s (median) | peak RSS MB | page MB |")
        print("|---|---|---|---|---|")
        for n, path in corpora.items():
            rows = sum(s["rows"] for s in json.loads((path / "manifest.json").read_text())["shards"])
            shard_mb = sum(f.stat().st_size for f in (path / "shards").rglob("*.parquet")) / 2**20
            secs, rss, size = (statistics.median(x) for x in zip(*runs[n]))
            print(f"| {rows:,} | {shard_mb:.1f} | {secs:.2f} | {rss:.0f} | {size / 2**20:.2f} |")


if __name__ == "__main__":
    main()
