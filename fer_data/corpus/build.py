"""`fer-data corpus`: merge curated tables into leak-free splits and Parquet shards, behind a gate.

The steps, each a function of the modules beside this one:
    inputs     which tables, their per-row metadata (and embeddings)
    features   one streaming pass over the faces: content hash, perceptual hashes, thumbnails
    dups       exact and near duplicate groups, the row kept per group, label conflicts
    identity   probable people: subject ids plus average-linkage clusters of embeddings
    splits     leak groups (union of the three) placed whole into train / val / test
    shards     a second streaming pass writes the kept rows into sorted, byte-stable shards
    gate       a Great Expectations suite on the shards as written
Everything is written under OUT/.staging-*/ and moved into place only after the gate passed,
with manifest.json last (and the previous manifest removed first), so a reader that finds a
manifest finds the shards it describes.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fer_data import __version__, schema
from fer_data import params as params_mod
from fer_data.corpus import decisions, dups, features, gate, identity, inputs, shards, splits
from fer_data.corpus.groups import UnionFind, component_names
from fer_data.corpus.params import SPLITS, CorpusParams, as_dict, resolve
from fer_data.curate import new_staging, swap_into_place

log = logging.getLogger("fer_data.corpus")

MANIFEST = "manifest.json"
GROUPS = "groups.parquet"
METRICS = "metrics.json"
SHARDS = "shards"
REPORT = "report"
#: Publication order: manifest.json last, so it never describes shards that are not there yet.
PUBLISH_ORDER = (GROUPS, SHARDS, REPORT, METRICS, MANIFEST)

GROUPS_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), False),
        pa.field("source", pa.string(), False),
        pa.field("locator", pa.string(), False),
        pa.field("label", pa.string()),
        pa.field("dup_group", pa.string(), False),
        pa.field("identity", pa.string()),
        pa.field("leak_group", pa.string(), False),
        pa.field("split", pa.string()),
        pa.field("kept", pa.bool_(), False),
        pa.field("drop_reason", pa.string()),
        pa.field("label_conflict", pa.bool_(), False),
    ]
)


class CorpusGateFailed(RuntimeError):
    """The publication gate failed: nothing was published."""


def build_corpus(
    tables: Sequence[inputs.Table], out_dir: str | Path, raw: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build the corpus of TABLES into OUT_DIR; returns the manifest. Raises before any work on bad params."""
    raw = dict(raw or {})
    cp = resolve(raw)
    params = params_mod.resolve(raw)
    check_inputs(tables, cp)
    decisions.check(raw)
    out = Path(out_dir)
    start = time.perf_counter()
    staging = new_staging(out)
    try:
        manifest = _build(tables, staging, cp, params, raw)
        manifest_path = staging / MANIFEST
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _write_report(staging, cp)
        (out / MANIFEST).unlink(missing_ok=True)  # no manifest while the shards are being switched
        swap_into_place(staging, out, PUBLISH_ORDER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("corpus: %s published in %.1f s", out, time.perf_counter() - start)
    return manifest


def check_inputs(tables: Sequence[inputs.Table], cp: CorpusParams) -> None:
    """Refuse, before any work, what would make the corpus wrong (one-line messages)."""
    inputs.check_unique(tables)
    names = {t.name for t in tables}
    if unknown := sorted(set(cp.sources) - names):
        raise inputs.CorpusInputError(
            f"corpus.sources.{unknown[0]}: no curated table of that source (tables: {', '.join(sorted(names))})"
        )
    included = [t for t in tables if cp.source(t.name).include]
    if not included:
        raise inputs.CorpusInputError("corpus.sources: every source is excluded (include: false)")
    if cp.identities.cluster:
        missing = [t.name for t in included if not inputs.has_embeddings(t)]
        if missing:
            raise inputs.CorpusInputError(
                f"curated table(s) {', '.join(missing)} have no face embeddings: {inputs.RECURATE_HINT}"
            )


def _build(
    tables: Sequence[inputs.Table], staging: Path, cp: CorpusParams, params: params_mod.Params, raw: Mapping
) -> dict[str, Any]:
    """Everything but the report and the switch: decisions, shards, groups, metrics, the gate; the manifest."""
    classes = list(params.target.classes)
    meta, emb = inputs.load_meta(tables, with_embeddings=cp.identities.cluster)
    if dupes := meta["sample_id"][meta["sample_id"].duplicated()].head(3).tolist():
        raise inputs.CorpusInputError(f"sample_id(s) {', '.join(dupes)} occur in more than one row")
    included = meta["source"].map(lambda s: cp.source(s).include).to_numpy(bool)
    rows = meta[included].reset_index(drop=True)
    emb_in = emb[included] if emb is not None else None
    log.info("corpus: %d rows in, %d from included sources", len(meta), len(rows))
    decided, stats = decide(rows, emb_in, [t for t in tables if cp.source(t.name).include], cp, classes)
    frame = _all_rows(meta, included, decided)
    frame, review = decisions.apply(frame, raw, classes)  # stewards' label-review decisions, before counting
    weights = class_weights(frame, classes)
    frame["sample_weight"] = _sample_weights(frame, weights, cp)
    entries = write_shards(tables, frame, staging, cp, params, classes)
    _write_groups(frame, staging / GROUPS)
    manifest = _manifest(tables, frame, entries, weights, cp, params, classes) | {"review": review}
    metrics = _metrics(frame, weights, stats, classes)
    (staging / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    result = gate.run(staging, manifest, staging / REPORT)
    if not result.success:
        raise CorpusGateFailed("corpus publication gate failed: " + "; ".join(gate.failures(result)))
    return manifest


def decide(
    rows: pd.DataFrame,
    emb: np.ndarray | None,
    tables: Sequence[inputs.Table],
    cp: CorpusParams,
    classes: Sequence[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Duplicate groups, identities, leak groups, splits and drop reasons of the included rows."""
    ids = rows["sample_id"].to_numpy(dtype=object)
    clock = [time.perf_counter()]
    feats = features.compute(tables)
    clock.append(time.perf_counter())
    dup_roots, stats = dups.duplicate_roots(rows, feats, emb, cp.duplicates)
    del feats
    in_target = rows["label"].isin(classes).to_numpy()
    keep = dups.keepers(rows, dup_roots, cp.duplicates.keep, in_target)
    dup_group = pd.Series(ids[keep], index=dup_roots[keep]).reindex(dup_roots).to_numpy(dtype=object)
    conflict = dups.label_conflicts(dup_roots, rows["label"])
    clock.append(time.perf_counter())
    id_roots, names = _identities(rows, emb, dup_roots, cp)
    clock.append(time.perf_counter())
    leak_uf = UnionFind(len(rows))
    leak_uf.union_pairs(zip(range(len(rows)), dup_roots))
    leak_uf.union_pairs(zip(range(len(rows)), id_roots))
    leak = component_names(leak_uf.roots(), ids)
    reason = _drop_reasons(rows, in_target, keep, conflict, cp)
    counted = reason == None  # noqa: E711 (elementwise)
    fixed = [
        s if cp.source(src).split == "official" and s in SPLITS else None
        for src, s in zip(rows["source"], rows["split"])
    ]
    split, straddled = splits.assign(
        leak, rows["label"].tolist(), fixed, counted, classes, cp.splits.ratios, cp.splits.seed, cp.splits.straddle
    )
    reason[counted & straddled] = "leak_straddle"
    clock.append(time.perf_counter())
    official = pd.DataFrame({"leak": leak, "fixed": fixed}).dropna()
    stats["straddling_official"] = int((official.groupby("leak")["fixed"].nunique() > 1).sum())
    stats["moved_from_official_split"] = sum(
        isinstance(f, str) and f != s and not d for f, s, d in zip(fixed, split, straddled)
    )
    steps = ("features", "duplicates", "identities", "splits")
    stats["seconds"] = {step: round(clock[k + 1] - clock[k], 2) for k, step in enumerate(steps)}
    decided = rows.assign(
        dup_group=dup_group,
        identity=names,
        leak_group=leak,
        corpus_split=split,
        kept=reason == None,  # noqa: E711
        drop_reason=reason,
        label_conflict=conflict,
    )
    return decided, stats


def _identities(
    rows: pd.DataFrame, emb: np.ndarray | None, dup_roots: np.ndarray, cp: CorpusParams
) -> tuple[np.ndarray, np.ndarray]:
    """Identity roots and names: subject ids and duplicate groups, plus embedding clusters when on."""
    ids = rows["sample_id"].to_numpy(dtype=object)
    sources = rows["source"].tolist()
    subjects = identity.subject_keys(sources, rows["subject_id"].tolist())
    if cp.identities.cluster:
        roots = identity.cluster(emb, subjects, sources, cp.identities, same=dup_roots)
    else:
        uf = UnionFind(len(rows))
        uf.union_labels(subjects)
        uf.union_pairs(zip(range(len(rows)), dup_roots))  # a copy shows the same person
        roots = uf.roots()
    return roots, identity.identity_names(roots, subjects, ids, anonymous=cp.identities.cluster)


def _drop_reasons(
    rows: pd.DataFrame, in_target: np.ndarray, keep: np.ndarray, conflict: np.ndarray, cp: CorpusParams
) -> np.ndarray:
    """Why a row stays out of the shards (None: it stays), before splits add leak_straddle."""
    reason = np.full(len(rows), None, dtype=object)
    unlabelled = rows["label"].isna().to_numpy()
    reason[~in_target] = np.where(unlabelled[~in_target], "unlabelled", "label_outside_target_set")
    reason[(reason == None) & ~keep] = "duplicate"  # noqa: E711 (elementwise)
    if cp.duplicates.label_conflicts == "drop":
        reason[(reason == None) & conflict] = "label_conflict"  # noqa: E711
    return reason


def _all_rows(meta: pd.DataFrame, included: np.ndarray, decided: pd.DataFrame) -> pd.DataFrame:
    """Every input row: the decided ones, and excluded sources' rows as singletons, not kept."""
    frame = meta.copy()
    ids = frame["sample_id"].to_numpy(dtype=object)
    subjects = identity.subject_keys(frame["source"].tolist(), frame["subject_id"].tolist())
    frame["dup_group"] = ids
    frame["identity"] = subjects
    frame["leak_group"] = ids
    frame["corpus_split"] = None
    frame["kept"] = False
    frame["drop_reason"] = "excluded_source"
    frame["label_conflict"] = False
    for col in ("dup_group", "identity", "leak_group", "corpus_split", "kept", "drop_reason", "label_conflict"):
        values = frame[col].to_numpy(dtype=object if col not in ("kept", "label_conflict") else bool).copy()
        values[included] = decided[col].to_numpy(dtype=values.dtype)
        frame[col] = values
    return frame


def class_weights(frame: pd.DataFrame, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per split, inverse-frequency weights n / (k * n_c) over the k classes present (absent classes: 0)."""
    kept = frame[frame["kept"]]
    out = {}
    for s in SPLITS:
        counts = kept.loc[kept["corpus_split"] == s, "label"].value_counts()
        present = [c for c in classes if counts.get(c, 0) > 0]
        n = int(sum(counts.get(c, 0) for c in classes))
        out[s] = {c: round(n / (len(present) * counts[c]), 6) if c in present else 0.0 for c in classes}
    return out


def _sample_weights(frame: pd.DataFrame, weights: Mapping, cp: CorpusParams) -> np.ndarray:
    source_w = frame["source"].map(lambda s: cp.source(s).weight).to_numpy(np.float64)
    if not cp.class_weights:
        return source_w.astype(np.float32)
    cls_w = [
        weights.get(s, {}).get(label, 0.0) if s else 0.0 for s, label in zip(frame["corpus_split"], frame["label"])
    ]
    return (np.asarray(cls_w, np.float64) * source_w).astype(np.float32)


def class_counts(frame: pd.DataFrame, split: str, classes: Sequence[str]) -> dict[str, int]:
    kept = frame[frame["kept"] & (frame["corpus_split"] == split)]
    counts = kept["label"].value_counts()
    return {c: int(counts.get(c, 0)) for c in classes}


def write_shards(
    tables: Sequence[inputs.Table],
    frame: pd.DataFrame,
    staging: Path,
    cp: CorpusParams,
    params: params_mod.Params,
    classes: Sequence[str],
) -> list[dict[str, Any]]:
    """Assign kept rows to shards (sorted by sample_id, contiguous runs), route them, finish each shard."""
    shard = np.full(len(frame), None, dtype=object)
    row_bytes = params.align.size**2 + params.align.extra_size**2 + shards.ROW_OVERHEAD_BYTES
    planned = []
    for s in SPLITS:
        members = frame.index[frame["kept"] & (frame["corpus_split"] == s)]
        members = frame.loc[members].sort_values("sample_id").index.to_numpy()
        # At least one shard a split, empty if need be: readers find part-00000 of every split.
        n_shards = shards.shard_counts(len(members), row_bytes, cp.shards)
        for k, chunk in enumerate(np.array_split(members, n_shards)):
            shard[chunk] = f"{s}-{k:05d}"
            planned.append((s, k))
    index = {c: i for i, c in enumerate(classes)}
    columns = {
        "shard": shard,
        "split": frame["corpus_split"].to_numpy(dtype=object),
        "dup_group": frame["dup_group"].to_numpy(dtype=object),
        "identity": frame["identity"].to_numpy(dtype=object),
        "leak_group": frame["leak_group"].to_numpy(dtype=object),
        "sample_weight": frame["sample_weight"].to_numpy(np.float32),
        "label_index": np.array([index.get(lab) for lab in frame["label"]], dtype=object),
        "label": frame["label"].to_numpy(dtype=object),  # a steward's relabel (decisions) replaces the dataset's
        "label_source": frame["label_source"].to_numpy(dtype=object),
    }
    plan = {}
    for ti in range(len(tables)):
        at = np.flatnonzero(frame["table"].to_numpy() == ti)
        order = np.argsort(frame["row"].to_numpy()[at])
        plan[ti] = {k: v[at[order]] for k, v in columns.items()}
    out_schema = shards.shard_schema()
    buckets = staging / ".buckets"
    shards.route(tables, plan, out_schema, buckets)
    entries = []
    for s, k in planned:
        rel = shards.shard_path(s, k)
        info = shards.finish(buckets / f"{s}-{k:05d}.parquet", staging / rel, out_schema, cp.shards, classes)
        entries.append({"path": rel, "split": s, **info})
    shutil.rmtree(buckets, ignore_errors=True)
    return entries


def _write_groups(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(
        frame.drop(columns=["split"]).rename(columns={"corpus_split": "split"})[GROUPS_SCHEMA.names],
        schema=GROUPS_SCHEMA,
        preserve_index=False,
    ).replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd", compression_level=shards.ZSTD_LEVEL)


def _manifest(
    tables: Sequence[inputs.Table],
    frame: pd.DataFrame,
    entries: list[dict[str, Any]],
    weights: Mapping[str, Mapping[str, float]],
    cp: CorpusParams,
    params: params_mod.Params,
    classes: Sequence[str],
) -> dict[str, Any]:
    from fer_data.labels import CANONICAL

    sources = {}
    for t in tables:
        mine = frame["source"] == t.name
        sources[t.name] = {
            "curated": str(t.path),
            "root": t.root,
            "rows_in": int(mine.sum()),
            "rows_kept": int((mine & frame["kept"]).sum()),
            "weight": cp.source(t.name).weight,
            "include": cp.source(t.name).include,
            "split": cp.source(t.name).split,
        }
    return {
        "kind": "fer-data-corpus",
        "corpus_version": "1",
        "curated_schema_version": schema.SCHEMA_VERSION,
        "target_set": params.target.name,
        "classes": list(classes),
        "canonical_classes": list(CANONICAL),
        "image": {
            "column": "image",
            "width": params.align.size,
            "height": params.align.size,
            "channels": 1,
            "dtype": "uint8",
        },
        "splits": {
            s: {
                "rows": sum(e["rows"] for e in entries if e["split"] == s),
                "class_counts": class_counts(frame, s, classes),
                "class_weights": dict(weights[s]),
            }
            for s in SPLITS
        },
        "shards": entries,
        "sources": sources,
        "params": as_dict(cp),
        "created_by": f"fer-data {__version__}",
    }


def _metrics(frame: pd.DataFrame, weights: Mapping, stats: Mapping[str, Any], classes: Sequence[str]) -> dict[str, Any]:
    kept = frame[frame["kept"]]
    dup_sizes = frame.groupby("dup_group").size()
    ident = frame.dropna(subset=["identity"])
    cross = ident.groupby("identity")["source"].nunique()
    leak_sizes = kept.groupby("leak_group").size()
    return {
        "rows_in": int(len(frame)),
        "rows_kept": int(len(kept)),
        "rows": {s: int((kept["corpus_split"] == s).sum()) for s in SPLITS},
        "class_counts": {s: class_counts(frame, s, classes) for s in SPLITS},
        "class_weights": {s: dict(w) for s, w in weights.items()},
        "dropped_by_reason": {k: int(v) for k, v in frame["drop_reason"].dropna().value_counts().sort_index().items()},
        "duplicates": {
            "groups": int((dup_sizes > 1).sum()),
            "rows_in_groups": int(dup_sizes[dup_sizes > 1].sum()),
            "label_conflict_groups": int(frame.loc[frame["label_conflict"], "dup_group"].nunique()),
            "exact_duplicate_rows": stats.get("exact_duplicate_rows", 0),
            "near_duplicate_pairs": stats.get("near_duplicate_pairs", 0),
        },
        "identities": {
            "identities": int(ident["identity"].nunique()),
            "rows_with_identity": int(len(ident)),
            "cross_source": int((cross > 1).sum()),
        },
        "leak_groups": {
            "count": int(len(leak_sizes)),
            "largest": int(leak_sizes.max()) if len(leak_sizes) else 0,
            # groups whose rows the datasets' official splits put on two sides (corpus.splits.straddle)
            "straddling_official_splits": stats.get("straddling_official", 0),
            "rows_moved_from_official_split": stats.get("moved_from_official_split", 0),
        },
        "seconds": stats.get("seconds", {}),
    }


def _write_report(staging: Path, cp: CorpusParams) -> None:
    """The steward report (fer_data.reports.corpus) into REPORT/index.html, beside the gate's Data Docs."""
    from fer_data.reports.corpus import write_corpus_report

    write_corpus_report(staging, staging / REPORT / "index.html", cp.report)
