"""DIR/report/index.html: the steward's page of a corpus, to look at the faces rather than read numbers.

One self-contained file (fer_data.reports.html) that opens on an air-gapped machine: class
distribution per source and split, a grid of aligned faces per class, faces with their 68
landmarks, the worst faces by each quality metric, the largest duplicate groups and the
identity clusters that span sources shown with their original images, label conflicts, and
the rejects of each source by reason with thumbnails of the rejected files.

The page stays a few MB for any corpus size: every section shows at most a set number of faces
(`corpus.report` in params.yaml, `ReportParams`), originals are embedded as thumbnails, and the
shards' metadata columns are read in batches while the faces to show are chosen (`TopN`). Images
are fetched in a second pass that reads only the row groups holding the chosen rows.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fer_data import imageio
from fer_data.reports import html as H


class ReportParams(BaseModel):
    """`corpus.report` in params.yaml: how much the steward page shows (it bounds the page's size)."""

    model_config = ConfigDict(extra="forbid")

    faces_per_class: int = Field(8, ge=0, le=64)  # aligned faces per class in the class grid
    landmark_faces: int = Field(8, ge=0, le=64)  # faces drawn with their landmarks, spread over sources
    worst_per_metric: int = Field(6, ge=0, le=64)  # faces per quality metric, worst first
    duplicate_groups: int = Field(8, ge=0, le=100)  # largest duplicate groups shown
    identity_clusters: int = Field(8, ge=0, le=100)  # largest identities that span two or more sources
    faces_per_group: int = Field(6, ge=1, le=32)  # members shown per duplicate group / identity / conflict
    label_conflicts: int = Field(10, ge=0, le=100)  # duplicate groups whose labels disagree
    rejects_per_reason: int = Field(6, ge=0, le=64)  # rejected inputs shown per source and reason
    thumb_px: int = Field(128, ge=32, le=512)  # longer side of embedded original images
    face_px: int = Field(96, ge=48, le=256)  # on-screen width of a 48 px aligned face


def report_params(raw: ReportParams | Mapping[str, Any] | None, where: str = "corpus.report") -> ReportParams:
    """Validated report settings; a bad key raises ValueError naming its path (corpus.report.thumb_px: ...)."""
    if isinstance(raw, ReportParams):
        return raw
    try:
        return ReportParams.model_validate(dict(raw or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in (where, *err["loc"]))
        raise ValueError(f"{key}: {err['msg']}") from None


# Quality views: (column, title, worst first = largest?, compare absolute values?). A column the
# corpus lacks (older curated tables have no outside_fraction) or a row with null is skipped.
QUALITY_VIEWS: tuple[tuple[str, str, bool, bool], ...] = (
    ("sharpness", "blurriest (lowest sharpness)", False, False),
    ("contrast", "flattest (lowest contrast)", False, False),
    ("brightness", "darkest", False, False),
    ("brightness", "brightest", True, False),
    ("roll_deg", "most tilted (|roll|, degrees)", True, True),
    ("yaw", "most turned (|yaw|)", True, True),
    ("eye_distance", "smallest faces (eye distance, original px)", False, False),
    ("det_score", "least confident detections", False, False),
    ("provided_landmarks_nme", "landmarks furthest from the dataset's own (NME)", True, False),
    ("outside_fraction", "most padded (share of pixels from outside the image)", True, False),
)
# Columns read in the metadata pass (never images); those absent from a shard are left out.
META_COLUMNS = ("sample_id", "source", "locator", "split", "label", "aligned", "identity", "dup_group")
# Locators of CSV sources name a file and a line (fer2013.csv:637): no image file to show.
CSV_LOCATOR = re.compile(r"\.csv:\d+$", re.IGNORECASE)
# Rows per metadata batch: large enough that per-batch pandas work is amortised (a few ms a batch),
# small enough to stay a few MB of metadata columns.
BATCH_ROWS = 16384
SPLIT_ORDER = ("train", "val", "test")
# Context kept around the face box when an original is shown with its landmarks (share of the box side).
CROP_MARGIN = 0.25
# Captions show a locator's file name, cut to fit under a thumbnail (11 px text); the whole one is on hover.
CAPTION_CHARS = 20


@dataclass
class Corpus:
    """A corpus folder as the shared contract lays it out, with its sources' folders resolved."""

    root: Path
    manifest: dict[str, Any]
    shards: list[Path]
    curated: dict[str, Path | None]  # source -> curated table folder (rejects.parquet beside it)
    raw: dict[str, Path | None]  # source -> dataset root (originals)
    classes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, corpus_dir: str | Path) -> Corpus:
        root = Path(corpus_dir)
        manifest = json.loads((root / "manifest.json").read_text())
        sources = manifest.get("sources") or {}
        return cls(
            root=root,
            manifest=manifest,
            shards=[root / s["path"] for s in manifest.get("shards", [])],
            curated={k: _resolve(v.get("curated"), root) for k, v in sources.items()},
            raw={k: _resolve(v.get("root"), root) for k, v in sources.items()},
            classes=list(manifest.get("classes") or []),
        )

    @property
    def groups(self) -> Path:
        return self.root / "groups.parquet"

    def curated_files(self) -> list[Path]:
        return [f for p in self.curated.values() if p for f in _parquet_files(p / "curated.parquet")]


def _resolve(path: str | None, corpus_dir: Path) -> Path | None:
    """A manifest path as written in params (relative to the project): try the working folder, then
    the folders above the corpus (DIR is usually PROJECT/data/corpus). None when nowhere found."""
    if not path:
        return None
    p = Path(path)
    if p.is_absolute():
        return p if p.exists() else None
    for base in (Path.cwd(), *corpus_dir.resolve().parents):
        if (base / p).exists():
            return base / p
    return None


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(path.glob("*.parquet")) if path.is_dir() else []


# --- streaming reads -----------------------------------------------------------------------------


def _batches(files: Iterable[Path], columns: Sequence[str]) -> Iterator[pd.DataFrame]:
    """Frames of at most BATCH_ROWS rows of the COLUMNS each file has: one in memory at a time."""
    for path in files:
        pf = pq.ParquetFile(path)
        have = [c for c in columns if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=have):
            yield batch.to_pandas()


def fetch_rows(files: Iterable[Path], ids: Iterable[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The rows of IDS (sample_id) with COLUMNS: scans the sample_id column, then reads only the row
    groups that hold a wanted row. A corpus of any size costs one id column plus those row groups."""
    wanted = set(ids)
    found: dict[str, dict[str, Any]] = {}
    for path in files:
        if not wanted - found.keys():
            break
        pf = pq.ParquetFile(path)
        have = [c for c in dict.fromkeys(["sample_id", *columns]) if c in pf.schema_arrow.names]
        for i in range(pf.num_row_groups):
            sid = pf.read_row_group(i, columns=["sample_id"]).column(0)
            mask = pc.is_in(sid, value_set=pa.array(sorted(wanted - found.keys()), pa.string()))
            if not pc.any(mask).as_py():
                continue
            for row in pf.read_row_group(i, columns=have).filter(mask).to_pylist():
                found.setdefault(row["sample_id"], row)
    return found


class TopN:
    """The N best rows by a key, per group, kept while streaming (deterministic: ties by sample_id)."""

    def __init__(self, n: int, largest: bool = False):
        self.n, self.largest = n, largest
        self.rows = pd.DataFrame()

    def update(self, frame: pd.DataFrame, key: pd.Series, by: str | None = None) -> None:
        if self.n <= 0:
            return
        cand = frame.assign(_key=key.to_numpy(dtype=np.float64, na_value=np.nan)).dropna(subset=["_key"])
        if cand.empty:
            return
        self.rows = self._best(pd.concat([self.rows, cand], ignore_index=True) if len(self.rows) else cand, by)

    def _best(self, frame: pd.DataFrame, by: str | None) -> pd.DataFrame:
        ordered = frame.sort_values(["_key", "sample_id"], ascending=[not self.largest, True], kind="stable")
        return ordered.groupby(by, sort=False).head(self.n) if by else ordered.head(self.n)


def _hash_key(ids: pd.Series) -> pd.Series:
    """A deterministic, well-spread order: sample ids are sha1 hex, so their first 12 digits are random."""
    return ids.str[:12].apply(int, base=16).astype(np.float64)


@dataclass
class Scan:
    """What the metadata pass over the shards gathers (all bounded by the report params)."""

    counts: Counter = field(default_factory=Counter)  # (source, split, label) -> rows
    per_class: TopN | None = None
    landmarks: TopN | None = None
    worst: dict[int, TopN] = field(default_factory=dict)  # index into QUALITY_VIEWS -> picks
    present: set[str] = field(default_factory=set)  # quality columns the shards have


def scan_shards(corpus: Corpus, p: ReportParams) -> Scan:
    """One pass over the shards' metadata columns: counts, and which faces each section shows."""
    scan = Scan(per_class=TopN(p.faces_per_class), landmarks=TopN(p.landmark_faces))
    scan.worst = {i: TopN(p.worst_per_metric, largest) for i, (_, _, largest, _) in enumerate(QUALITY_VIEWS)}
    quality = sorted({c for c, *_ in QUALITY_VIEWS})
    for f in _batches(corpus.shards, [*META_COLUMNS, *quality]):
        scan.counts.update(zip(f["source"], f["split"], f["label"]))
        meta = f[[c for c in META_COLUMNS if c in f]]
        scan.per_class.update(meta, _hash_key(f["sample_id"]), by="label")
        aligned = f["aligned"].fillna(False).astype(bool) if "aligned" in f else pd.Series(True, index=f.index)
        scan.landmarks.update(meta[aligned], _hash_key(f["sample_id"][aligned]), by="source")
        for i, (col, _, _, absolute) in enumerate(QUALITY_VIEWS):
            if col in f:
                scan.present.add(col)
                values = f[col].astype("Float64")
                scan.worst[i].update(meta.assign(value=values), values.abs() if absolute else values)
    return scan


# --- images --------------------------------------------------------------------------------------


def _aligned(row: Mapping[str, Any] | None) -> np.ndarray | None:
    if not row or row.get("image") is None:
        return None
    return np.frombuffer(row["image"], np.uint8).reshape(int(row["height"]), int(row["width"]))


def read_original(root: Path | None, locator: str) -> np.ndarray | None:
    """The original file of LOCATOR under ROOT, decoded as the pipeline decodes it (grey).

    None for CSV rows, video frames, missing files, and locators that point outside ROOT (they come
    from user files: a report must not embed whatever `../../` names).
    """
    if root is None or CSV_LOCATOR.search(locator):
        return None
    base = root.resolve()
    path = (base / locator).resolve()
    if not path.is_relative_to(base) or not imageio.is_image_file(path):
        return None
    try:
        grey, _ = imageio.read_grey(path)
    except imageio.UnreadableImage:
        return None
    return grey


def original_thumbnail(root: Path | None, locator: str, px: int) -> np.ndarray | None:
    """`read_original` downscaled so its longer side is at most PX."""
    grey = read_original(root, locator)
    return None if grey is None else H.thumbnail(grey, px)


def original_with_landmarks(
    root: Path | None, locator: str, bbox: Sequence[int] | None, points: Sequence[float] | None, px: int
) -> np.ndarray | None:
    """The original cropped around its face box (plus CROP_MARGIN), PX on its longer side, with the
    landmarks fitted on it (`landmarks_original`) drawn: where the fit went before any alignment."""
    grey = read_original(root, locator)
    if grey is None or bbox is None or points is None:
        return None
    left, top, right, bottom = (float(v) for v in bbox)
    margin = CROP_MARGIN * max(right - left, bottom - top)
    x0, y0 = max(0, int(left - margin)), max(0, int(top - margin))
    x1, y1 = min(grey.shape[1], int(right + margin)), min(grey.shape[0], int(bottom + margin))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    crop = grey[y0:y1, x0:x1]
    scale = px / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    pts = (np.asarray(points, np.float64).reshape(-1, 2) - (x0, y0) + 0.5) * scale - 0.5
    return H.draw_landmarks(small, pts, scale=1)


class Images:
    """Aligned faces (shards first, then the curated tables for dropped rows) and originals."""

    COLUMNS = (
        "image",
        "width",
        "height",
        "landmarks",
        "landmarks_original",
        "bbox",
        "label",
        "source",
        "locator",
        "split",
    )

    def __init__(self, corpus: Corpus, p: ReportParams):
        self.corpus, self.p = corpus, p
        self.rows: dict[str, dict[str, Any]] = {}

    def load(self, ids: Iterable[str]) -> None:
        """Fetch every id the page will show, in two bounded passes."""
        ids = set(ids) - self.rows.keys()
        self.rows.update(fetch_rows(self.corpus.shards, ids, self.COLUMNS))
        missing = ids - self.rows.keys()
        if missing:
            self.rows.update(fetch_rows(self.corpus.curated_files(), missing, self.COLUMNS))

    def aligned(self, sample_id: str) -> np.ndarray | None:
        return _aligned(self.rows.get(sample_id))

    def original_and_aligned(self, sample_id: str, source: str, locator: str) -> tuple[np.ndarray | None, str]:
        """(picture, what it shows): the original file's thumbnail beside the aligned face; the aligned
        face alone where the source has no file (CSV rows) or the file is gone."""
        thumb = original_thumbnail(self.corpus.raw.get(source), locator, self.p.thumb_px)
        face = self.aligned(sample_id)
        if thumb is not None and face is not None:
            return H.side_by_side([thumb, face], height=min(thumb.shape[0], self.p.thumb_px)), "original | aligned"
        if thumb is not None:
            return thumb, "original (aligned face not found)"
        return face, "aligned only (no file)"


def _short(locator: str) -> str:
    name = locator.rsplit("/", 1)[-1]
    return name if len(name) <= CAPTION_CHARS else "…" + name[-(CAPTION_CHARS - 1) :]


# --- sections ------------------------------------------------------------------------------------


def _split_rank(split: str) -> tuple[int, str]:
    """train, val, test first, in that order (manifest.json's keys are sorted alphabetically)."""
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


def _overview(c: Corpus, group_stats: pd.DataFrame) -> str:
    m = c.manifest
    splits = dict(sorted((m.get("splits") or {}).items(), key=lambda kv: _split_rank(kv[0])))
    split_rows = [
        [s, v.get("rows", 0)] + [(v.get("class_counts") or {}).get(k, 0) for k in c.classes] for s, v in splits.items()
    ]
    weights = [
        [s] + [round(float((v.get("class_weights") or {}).get(k, 0.0)), 3) for k in c.classes]
        for s, v in splits.items()
    ]
    num = range(1, len(c.classes) + 2)
    out = "<h3>Rows per split and class</h3>" + H.table(["split", "rows", *c.classes], split_rows, numeric=num)
    out += "<h3>Class weights (inverse frequency) per split</h3>" + H.table(["split", *c.classes], weights, num)
    src = [
        [name, v.get("rows_in"), v.get("rows_kept"), v.get("weight"), v.get("curated"), v.get("root")]
        for name, v in (m.get("sources") or {}).items()
    ]
    out += "<h3>Sources</h3>" + H.table(
        ["source", "rows in", "rows kept", "weight", "curated table", "dataset root"], src, numeric=(1, 2, 3)
    )
    if len(group_stats):
        out += "<h3>Why rows were not kept</h3>" + H.table(
            list(group_stats.columns), group_stats.itertuples(index=False), numeric=range(1, len(group_stats.columns))
        )
    shards = [
        [s.get("path"), s.get("split"), s.get("rows"), s.get("bytes"), s.get("row_groups"), str(s.get("sha256"))[:16]]
        for s in m.get("shards") or []
    ]
    out += "<h3>Shards</h3>" + H.table(
        ["path", "split", "rows", "bytes", "row groups", "sha256 (first 16)"], shards, numeric=(2, 3, 4)
    )
    return out


def _distribution(c: Corpus, counts: Counter) -> str:
    splits = sorted((c.manifest.get("splits") or {}).keys() or {s for _, s, _ in counts}, key=_split_rank)
    sources = sorted({src for src, _, _ in counts})
    by_split = {
        s: {k: sum(n for (_, sp, lab), n in counts.items() if sp == s and lab == k) for k in c.classes} for s in splits
    }
    out = H.grouped_bars(by_split, c.classes, title="All sources: rows per class, by split", ylabel="rows")
    charts = []
    for s in splits:
        data = {src: {k: counts.get((src, s, k), 0) for k in c.classes} for src in sources}  # same colours
        charts.append(H.grouped_bars(data, c.classes, title=f"{s}: rows per class, by source", ylabel="rows"))
    table_rows = [
        [src, s, *[counts.get((src, s, k), 0) for k in c.classes], sum(counts.get((src, s, k), 0) for k in c.classes)]
        for src in sources
        for s in splits
    ]
    num = range(2, len(c.classes) + 3)
    return (
        out
        + f"<div class=row>{''.join(charts)}</div>"
        + H.table(["source", "split", *c.classes, "total"], table_rows, numeric=num)
    )


def _class_grid(c: Corpus, scan: Scan, images: Images, p: ReportParams) -> str:
    picks = scan.per_class.rows
    out = []
    for k in c.classes:
        mine = picks[picks["label"] == k] if len(picks) else picks
        faces = [
            H.Face(images.aligned(r.sample_id), [r.source, r.split], title=r.locator)
            for r in mine.itertuples()
            if images.aligned(r.sample_id) is not None
        ]
        out.append(f"<h3>{H.esc(k)}</h3>" + H.face_grid(faces, width=p.face_px, empty=f"no {k} rows"))
    return "".join(out)


def _landmark_grid(corpus: Corpus, scan: Scan, images: Images, p: ReportParams) -> str:
    """Aligned faces with their landmarks, beside the original's face box with the fit drawn where there is a file."""
    faces = []
    for r in _round_robin(scan.landmarks.rows, "source"):
        row = images.rows.get(r["sample_id"])
        face = images.aligned(r["sample_id"])
        if face is None or not row or row.get("landmarks") is None:
            continue
        side = 2 * p.face_px
        drawn = H.draw_landmarks(face, row["landmarks"], scale=max(2, round(side / face.shape[1])))
        orig = original_with_landmarks(
            corpus.raw.get(r["source"]), r["locator"], row.get("bbox"), row.get("landmarks_original"), side
        )
        picture = H.side_by_side([orig, drawn], height=drawn.shape[0]) if orig is not None else drawn
        what = "original | aligned" if orig is not None else "aligned"
        faces.append(H.Face(picture, [r["source"], _short(r["locator"]), what], title=r["locator"]))
    return H.face_grid(faces[: p.landmark_faces], width=None, height=2 * p.face_px, empty="no faces with landmarks")


def _round_robin(frame: pd.DataFrame, by: str) -> list[dict[str, Any]]:
    """Rows interleaved across the values of BY (one of each source, then the next of each, ...)."""
    if frame.empty:
        return []
    lists = [g.to_dict("records") for _, g in frame.groupby(by, sort=True)]
    out = []
    for i in range(max(map(len, lists))):
        out += [rows[i] for rows in lists if i < len(rows)]
    return out


def _worst(scan: Scan, images: Images, p: ReportParams) -> str:
    out = []
    for i, (col, title, _, _) in enumerate(QUALITY_VIEWS):
        if col not in scan.present:
            continue
        rows = scan.worst[i].rows
        faces = [
            H.Face(images.aligned(r.sample_id), [f"{r.value:.3g}", r.source], title=f"{r.locator}: {col} {r.value:.4g}")
            for r in rows.itertuples()
            if images.aligned(r.sample_id) is not None
        ]
        out.append(f"<h3>{H.esc(title)}</h3>" + H.face_grid(faces, width=p.face_px, empty=f"no values of {col}"))
    absent = sorted({c for c, *_ in QUALITY_VIEWS} - scan.present)
    note = f"<p class=muted>Not in these shards: {H.esc(', '.join(absent))}.</p>" if absent else ""
    return "".join(out) + note


GROUP_COLUMNS = ("sample_id", "source", "locator", "label", "dup_group", "identity", "split", "kept", "drop_reason")


def _group_members(c: Corpus, column: str, keys: Sequence[str]) -> pd.DataFrame:
    """The groups.parquet rows whose COLUMN is one of KEYS (streamed a row group at a time)."""
    if not keys or not c.groups.exists():
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    wanted = set(keys)
    parts = [f[f[column].isin(wanted)] for f in _batches([c.groups], [*GROUP_COLUMNS, "label_conflict"])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(GROUP_COLUMNS))


def _largest(c: Corpus, column: str, n: int, min_sources: int = 1, where: str | None = None) -> list[str]:
    """Keys of COLUMN with more than one row (and at least MIN_SOURCES sources), largest first."""
    if n <= 0 or not c.groups.exists():
        return []
    cols = [column, "source"] + ([where] if where else [])
    t = pq.read_table(c.groups, columns=cols)  # a few metadata columns: small per row
    if where:
        t = t.filter(pc.fill_null(t[where], False))
    t = t.filter(pc.is_valid(t[column]))
    stats = t.group_by(column).aggregate([("source", "count"), ("source", "count_distinct")]).to_pandas()
    stats = stats[(stats["source_count"] > 1) & (stats["source_count_distinct"] >= min_sources)]
    stats = stats.sort_values(["source_count", column], ascending=[False, True])
    return stats[column].head(n).tolist()


def _member_caption(r: Mapping[str, Any], what: str) -> list[str]:
    fate = "kept" if r.get("kept") else f"dropped: {r.get('drop_reason') or '?'}"
    return [f"{r['source']} · {r['label']}", _short(str(r["locator"])), f"{r.get('split') or ''} · {fate}", what]


@dataclass
class Groups:
    """Groups of one kind (duplicate groups, identities) to show: all their members' metadata, and
    the few members shown per group (only those get their images read)."""

    column: str
    keys: list[str]
    members: pd.DataFrame
    shown: dict[str, list[dict[str, Any]]]

    @property
    def shown_ids(self) -> list[str]:
        return [r["sample_id"] for rows in self.shown.values() for r in rows]


def groups_to_show(c: Corpus, column: str, keys: list[str], p: ReportParams, by_source: bool) -> Groups:
    """KEYS' members from groups.parquet; kept rows first, then by sample id (BY_SOURCE: one of each source in turn)."""
    members = _group_members(c, column, keys)
    shown = {}
    for key in keys:
        mine = members[members[column] == key].sort_values(["kept", "sample_id"], ascending=[False, True])
        rows = _round_robin(mine, "source") if by_source else mine.to_dict("records")
        shown[key] = rows[: p.faces_per_group]
    return Groups(column, keys, members, shown)


def _group_cards(g: Groups, images: Images, p: ReportParams) -> str:
    cards = []
    for key in g.keys:
        mine = g.members[g.members[g.column] == key]
        faces = []
        for r in g.shown[key]:
            img, what = images.original_and_aligned(r["sample_id"], r["source"], str(r["locator"]))
            if img is not None:
                faces.append(H.Face(img, _member_caption(r, what), title=str(r["locator"])))
        labels = ", ".join(f"{k}: {v}" for k, v in Counter(mine["label"]).most_common())
        sources = ", ".join(sorted(set(mine["source"])))
        head = f"<b>{H.esc(key)}</b>: {len(mine)} rows · sources: {H.esc(sources)} · labels: {H.esc(labels)}"
        more = f" (showing {len(g.shown[key])})" if len(mine) > len(g.shown[key]) else ""
        cards.append(f"<div class=card>{head}{more}{H.face_grid(faces, width=None, height=p.thumb_px)}</div>")
    return "".join(cards)


def _rejects(c: Corpus, p: ReportParams) -> str:
    """Per source: its rejects table read a row group at a time, counted by reason, a few kept as examples."""
    out, totals = [], []
    for source, folder in c.curated.items():
        files = _parquet_files(folder / "rejects.parquet") if folder else []
        if not files:
            out.append(f"<h3>{H.esc(source)}</h3><p class=muted>no rejects table found</p>")
            continue
        counts: Counter = Counter()
        samples: dict[str, list[dict[str, Any]]] = {}
        for f in _batches(files, ["locator", "reason", "detail"]):
            counts.update(f["reason"])
            for reason, g in f.groupby("reason", sort=False):
                have = samples.setdefault(reason, [])
                have.extend(g.head(max(0, p.rejects_per_reason - len(have))).to_dict("records"))
        totals += [[source, reason, n] for reason, n in counts.most_common()]
        out.append(f"<h3>{H.esc(source)}</h3>" + _reject_reasons(c, source, counts, samples, p))
    summary = H.table(["source", "reason", "rejected"], totals, numeric=(2,), full=False) if totals else ""
    return summary + "".join(out)


def _reject_reasons(c: Corpus, source: str, counts: Counter, samples: dict, p: ReportParams) -> str:
    """A count per reason, then a card per reason with thumbnails of rejected files (or their locators)."""
    if not counts:
        return "<p class=muted>no rejects</p>"
    cards = []
    for reason, n in counts.most_common():
        faces, names = [], []
        for r in samples.get(reason, []):
            thumb = original_thumbnail(c.raw.get(source), r["locator"], p.thumb_px)
            if thumb is None:
                names.append(r["locator"])
            else:
                faces.append(H.Face(thumb, [_short(r["locator"])], title=f"{r['locator']}: {r['detail'] or ''}"))
        detail = next((r["detail"] for r in samples.get(reason, []) if r["detail"]), "")
        head = f"<b>{H.esc(reason)}</b> ({n}): <span class=muted>{H.esc(detail)}</span>"
        grid = H.face_grid(faces, width=None, height=p.face_px) if faces else ""
        files = f"<p class=muted>no image file: {H.esc(', '.join(names))}</p>" if names else ""
        cards.append(f"<div class=card>{head}{grid}{files}</div>")
    return "".join(cards)


def _drop_stats(c: Corpus) -> pd.DataFrame:
    """Rows per source by fate (kept, or the drop reason), from groups.parquet."""
    if not c.groups.exists():
        return pd.DataFrame()
    t = pq.read_table(c.groups, columns=["source", "kept", "drop_reason"]).to_pandas()
    fate = t["drop_reason"].where(~t["kept"].astype(bool), "kept").fillna("dropped (no reason)")
    table = pd.crosstab(t["source"], fate).reset_index()
    table.columns.name = None
    return table


# --- the page ------------------------------------------------------------------------------------


def render(corpus: Corpus, p: ReportParams) -> str:
    """The whole page as a string."""
    scan = scan_shards(corpus, p)
    dups = groups_to_show(corpus, "dup_group", _largest(corpus, "dup_group", p.duplicate_groups), p, False)
    people = groups_to_show(corpus, "identity", _largest(corpus, "identity", p.identity_clusters, 2), p, True)
    conflict_keys = _largest(corpus, "dup_group", p.label_conflicts, where="label_conflict")
    conflicts = groups_to_show(corpus, "dup_group", conflict_keys, p, False)
    images = Images(corpus, p)
    picks = [scan.per_class.rows, scan.landmarks.rows, *(t.rows for t in scan.worst.values())]
    chosen = [i for f in picks if len(f) for i in f["sample_id"]]
    images.load(chosen + dups.shown_ids + people.shown_ids + conflicts.shown_ids)
    sections = [
        ("overview", "Overview", _overview(corpus, _drop_stats(corpus)), ""),
        ("classes", "Class distribution", _distribution(corpus, scan.counts), "Kept rows, from the shards."),
        (
            "faces",
            "Aligned faces per class",
            _class_grid(corpus, scan, images, p),
            f"Up to {p.faces_per_class} a class, chosen by sample id (deterministic, spread over sources); "
            "hover a face for its locator.",
        ),
        (
            "landmarks",
            "Faces with their landmarks",
            _landmark_grid(corpus, scan, images, p),
            "The 68 points as fitted on the original (its face box and a margin) and on the aligned face: "
            "jaw, brows, nose, eyes and mouth in their own colours. Points off the face mean a bad fit.",
        ),
        ("quality", "Worst faces by quality metric", _worst(scan, images, p), "Kept rows only, worst first."),
        (
            "duplicates",
            "Largest duplicate groups",
            _group_cards(dups, images, p) or "<p class=muted>No duplicate groups.</p>",
            "Exact and near copies found across and within sources: one row of each group is kept. "
            "Original files where the source has them (CSV sources: the aligned face).",
        ),
        (
            "identities",
            "Identity clusters across sources",
            _group_cards(people, images, p) or "<p class=muted>No identity spans two sources.</p>",
            "Probable people seen in more than one source; each identity stays in one split.",
        ),
        (
            "conflicts",
            "Label conflicts",
            _group_cards(conflicts, images, p) or "<p class=muted>No duplicate group has disagreeing labels.</p>",
            "Copies of one face with different labels: for stewards to decide.",
        ),
        (
            "rejects",
            "Rejects by reason",
            _rejects(corpus, p),
            "Inputs each source's curation rejected (from its rejects table), with the rejected files.",
        ),
    ]
    m = corpus.manifest
    total = sum(int(v.get("rows", 0)) for v in (m.get("splits") or {}).values())
    intro = (
        f"<p class=lead>{total} rows in {len(m.get('shards') or [])} shard(s) from {len(m.get('sources') or {})} "
        f"source(s); target set <code>{H.esc(m.get('target_set'))}</code> ({H.esc(', '.join(corpus.classes))}); "
        f"written by {H.esc(m.get('created_by'))}. Machine-readable: <code>manifest.json</code>, "
        "<code>groups.parquet</code> (every row's fate), <code>metrics.json</code>.</p>"
    )
    body = intro + H.toc((a, t) for a, t, _, _ in sections) + "".join(H.section(*s) for s in sections)
    return H.page("fer-data corpus report", body)


def write_corpus_report(
    corpus_dir: str | Path, out_html: str | Path, params: ReportParams | Mapping[str, Any] | None = None
) -> Path:
    """Write the steward page of CORPUS_DIR to OUT_HTML (staged, then renamed); returns OUT_HTML.

    PARAMS: the `corpus.report` settings; by default those recorded in the manifest's params.
    """
    corpus = Corpus.load(corpus_dir)
    if params is None:
        params = (corpus.manifest.get("params") or {}).get("report")
    p = report_params(params)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render(corpus, p), encoding="utf-8")
    os.replace(tmp, out)
    return out
