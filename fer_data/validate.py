"""Great Expectations suites for curated tables and their rejects, run by a checkpoint.

Each curated source gets two suites, built in code from params.yaml's `validation:` block:

- `<source>.curated` on the curated table: ids unique and present, labels in the target set
  and consistent with their index, image byte length = width x height, landmarks inside the
  original frame, quality metrics in plausible ranges, the share of aligned faces, and one
  expectation per target class whose observed value is that class's share (class proportions).
- `<source>.rejects` on the run's outcomes (every rejected input plus one row per curated
  row): every input accounted for once, reason codes well formed, and the run-level rates
  stewards care about: face-found rate and reject rate (rejects for data problems, among
  the inputs the label policy keeps), each against a threshold.

Tables are read batch by batch and the image bytes are reduced to their lengths at once,
so memory stays at a few numeric columns per row however large the dataset. Each suite runs
through its checkpoint; the run's results are then rendered once as Data Docs in REPORT/gx/.
Their CDN scripts and styles are served from REPORT/gx/static/vendor/ (fer_data.reports.gx_offline),
so they open offline; REPORT/index.html (fer_data.validation_report) is also written: one plain
page of the whole run. REPORT/summary.json holds the outcome for DVC metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from fer_data import sources
from fer_data.curate import CURATED, METRICS, REJECTS
from fer_data.params import Params, deep_merge
from fer_data.records import REASONS, Kind, Reason, codes_of_kind, face_search

log = logging.getLogger("fer_data.validate")

#: Defaults of params.yaml's `validation:` block (documented there).
DEFAULTS: dict[str, Any] = {
    "min_rows": 1,
    "max_reject_rate": 0.25,
    "min_face_found_rate": 0.8,
    "min_aligned_rate": 0.8,
    "min_class_share": 0.0,
    "landmark_margin": 0.2,
    # Extra reason codes to count as label policy (left out of the reject rate), beyond those
    # fer_data.records and each source declare as such.
    "policy_reasons": [],
    "max_reason_rates": {},
    "ranges": {
        "brightness": {"min": 0, "max": 255},
        "contrast": {"min": 2, "max": 128, "mostly": 0.99},  # ~0: a blank image (FER2013 has a few)
        "sharpness": {"min": 0},
        "yaw": {"min": -1, "max": 1},
        "eye_distance": {"min": 1},
        "face_size": {"min": 8},
        "n_faces": {"min": 1},
        "provided_landmarks_nme": {"min": 0, "max": 0.5, "mostly": 0.95},
        "valence": {"min": -1, "max": 1},
        "arousal": {"min": -1, "max": 1},
    },
    "sources": {},
}

#: Curated columns read for validation; image bytes are read only to take their length.
SCALAR_COLUMNS = (
    "sample_id",
    "source",
    "locator",
    "label",
    "label_index",
    "width",
    "height",
    "large_size",
    "aligned",
    "orig_width",
    "orig_height",
    "detector",
    "det_score",
    "n_faces",
    "face_size",
    "eye_distance",
    "roll_deg",
    "yaw",
    "sharpness",
    "brightness",
    "contrast",
    "provided_landmarks_nme",
    "valence",
    "arousal",
)
BATCH_ROWS = 8192


class ValidationFailed(RuntimeError):
    """Raised by callers (CLI, flow) when a run has failing expectations; carries the report."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__(report.failure_message())


# ---------------------------------------------------------------- settings


def settings(raw: Mapping[str, Any] | None, source: str) -> dict[str, Any]:
    """The `validation:` block with defaults and the source's own overrides applied."""
    block = dict((raw or {}).get("validation") or {})
    override = (block.get("sources") or {}).get(source) or {}
    _check_keys(block, "validation")
    _check_keys(override, f"validation.sources.{source}")
    merged = deep_merge(deep_merge(DEFAULTS, {k: v for k, v in block.items() if k != "sources"}), override)
    unknown = sorted(set(merged["ranges"]) - set(SCALAR_COLUMNS))
    if unknown:
        raise ValueError(
            f"validation.ranges: no curated column {', '.join(unknown)} (numeric columns: {', '.join(SCALAR_COLUMNS)})"
        )
    return merged


def check_params(block: Mapping[str, Any]) -> None:
    """The `validation:` block's owner check (fer_data.params.BLOCK_OWNERS): every key, every source override."""
    raw = {"validation": block}
    settings(raw, "")
    for source in block.get("sources") or {}:
        settings(raw, source)


def _check_keys(block: Mapping[str, Any], where: str) -> None:
    """A misspelt threshold would silently keep its default: refuse it instead."""
    unknown = sorted(set(block) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")


# ---------------------------------------------------------------- frames


def _landmark_extent(points: pa.Array, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the smallest and largest landmark coordinate as a fraction of the frame side (NaN: none)."""
    n = len(points)
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    valid = points.is_valid().to_numpy(zero_copy_only=False)
    if valid.any():
        xy = (
            points.filter(pa.array(valid))
            .flatten()
            .to_numpy(zero_copy_only=False)
            .reshape(-1, 68, 2)
            .astype(np.float64)
        )
        frac = xy / np.stack([width[valid], height[valid]], axis=-1)[:, None, :]
        lo[valid], hi[valid] = frac.min(axis=(1, 2)), frac.max(axis=(1, 2))
    return lo, hi


def _curated_batch(batch: pa.RecordBatch) -> pd.DataFrame:
    frame = batch.select(list(SCALAR_COLUMNS)).to_pandas()
    width = frame["width"].to_numpy(np.int64)
    height = frame["height"].to_numpy(np.int64)
    frame["image_nbytes"] = pc.binary_length(batch.column("image")).to_numpy(zero_copy_only=False)
    frame["image_expected_nbytes"] = width * height
    large = batch.column("image_large")
    frame["large_nbytes"] = pc.binary_length(large).to_pandas().astype("Int64")
    frame["large_expected_nbytes"] = (frame["large_size"].astype("Int64") ** 2).where(
        large.is_valid().to_numpy(zero_copy_only=False)
    )
    lo, hi = _landmark_extent(
        batch.column("landmarks_original"),
        frame["orig_width"].to_numpy(np.float64),
        frame["orig_height"].to_numpy(np.float64),
    )
    frame["landmarks_min_frac"], frame["landmarks_max_frac"] = lo, hi
    frame["aligned"] = frame["aligned"].astype(np.int8)
    return frame


def curated_frame(table: str | Path, classes: Sequence[str]) -> pd.DataFrame:
    """The curated table without image bytes, plus the helper columns the suite checks."""
    dataset = ds.dataset(Path(table), format="parquet")
    columns = list(SCALAR_COLUMNS) + ["image", "image_large", "landmarks_original"]
    parts = [_curated_batch(b) for b in dataset.to_batches(columns=columns, batch_size=BATCH_ROWS) if b.num_rows]
    frame = (
        pd.concat(parts, ignore_index=True) if parts else _curated_batch(pa.RecordBatch.from_pylist([], dataset.schema))
    )
    index = {name: i for i, name in enumerate(classes)}
    frame["expected_label_index"] = frame["label"].map(index).astype("Int64")
    for name in classes:
        frame[share_column(name)] = (frame["label"] == name).astype(np.int8)
    return frame


def share_column(label: str) -> str:
    return f"share_{label}"


def outcomes_frame(
    rejects: str | Path,
    curated: pd.DataFrame,
    policy_reasons: Iterable[str] = (),
    reason_limits: Iterable[str] = (),
    table: Mapping[str, Reason] = REASONS,
) -> pd.DataFrame:
    """One row per input of the run: its rejects (with reason) and its curated rows (reason null).

    TABLE (fer_data.sources.reasons) says which reasons are label policy and which mean that
    face finding ran; POLICY_REASONS adds codes to count as policy.
    """
    rej = ds.dataset(Path(rejects), format="parquet").to_table(columns=["source", "locator", "reason"]).to_pandas()
    kept = curated[["source", "locator"]].assign(reason=None)
    frame = pd.concat([rej, kept], ignore_index=True)
    reason = frame["reason"]
    rejected = reason.notna()
    policy = reason.isin(codes_of_kind(Kind.POLICY, table) + list(policy_reasons))
    # Reject rate: rejects for data problems among the inputs the label policy keeps.
    frame["data_reject"] = rejected.astype("Int8").mask(policy)
    # Face-found rate: among inputs that went through face finding, the share where one was found.
    outcome = {code: face_search(code, table) for code in reason.dropna().unique()}
    found = reason.map(outcome).where(rejected, True)
    frame["face_found"] = found.map({True: 1, False: 0}).astype("Int8")
    for name in reason_limits:
        frame[f"reason_{name}"] = (reason == name).astype(np.int8)
    return frame


# ---------------------------------------------------------------- suites


def _range(column: str, spec: Mapping[str, Any]) -> Any:
    import great_expectations.expectations as gxe

    kwargs: dict[str, Any] = {"column": column, "min_value": spec.get("min"), "max_value": spec.get("max")}
    if spec.get("mostly") is not None:
        kwargs["mostly"] = float(spec["mostly"])
    return gxe.ExpectColumnValuesToBeBetween(**kwargs)


def curated_expectations(source: str, params: Params, cfg: Mapping[str, Any]) -> list:
    """The `<source>.curated` suite's expectations."""
    import great_expectations.expectations as gxe

    classes = list(params.target.classes)
    margin = float(cfg["landmark_margin"])
    exps = [
        gxe.ExpectTableRowCountToBeBetween(min_value=int(cfg["min_rows"])),
        gxe.ExpectColumnValuesToNotBeNull(column="sample_id"),
        gxe.ExpectColumnValuesToBeUnique(column="sample_id"),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=[source]),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=classes),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="label_index", column_B="expected_label_index", ignore_row_if="either_value_is_missing"
        ),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="image_nbytes", column_B="image_expected_nbytes"),
        gxe.ExpectColumnValuesToBeInSet(column="width", value_set=[params.align.size]),
        gxe.ExpectColumnValuesToBeInSet(column="height", value_set=[params.align.size]),
        gxe.ExpectColumnValuesToBeBetween(column="landmarks_min_frac", min_value=-margin),
        gxe.ExpectColumnValuesToBeBetween(column="landmarks_max_frac", max_value=1 + margin),
        gxe.ExpectColumnValuesToBeBetween(
            column="roll_deg", min_value=-params.faces.max_roll_deg, max_value=params.faces.max_roll_deg
        ),
        gxe.ExpectColumnMeanToBeBetween(column="aligned", min_value=float(cfg["min_aligned_rate"]), max_value=1),
    ]
    if not params.keep_unlabelled:
        exps.insert(4, gxe.ExpectColumnValuesToNotBeNull(column="label"))
    if params.align.extra_size:
        exps.append(gxe.ExpectColumnValuesToBeInSet(column="large_size", value_set=[params.align.extra_size]))
        exps.append(gxe.ExpectColumnPairValuesToBeEqual(column_A="large_nbytes", column_B="large_expected_nbytes"))
    exps += [_range(column, spec) for column, spec in sorted((cfg.get("ranges") or {}).items()) if spec]
    exps += [
        gxe.ExpectColumnMeanToBeBetween(column=share_column(c), min_value=float(cfg["min_class_share"]), max_value=1)
        for c in classes
    ]
    return exps


def rejects_expectations(source: str, cfg: Mapping[str, Any], read: int | None) -> list:
    """The `<source>.rejects` suite's expectations (on the outcomes frame)."""
    import great_expectations.expectations as gxe

    exps = [
        gxe.ExpectColumnValuesToNotBeNull(column="locator"),
        gxe.ExpectColumnValuesToBeUnique(column="locator"),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=[source]),
        gxe.ExpectColumnValuesToMatchRegex(column="reason", regex=r"^[a-z][a-z0-9_]*$"),
        gxe.ExpectColumnMeanToBeBetween(column="data_reject", min_value=0, max_value=float(cfg["max_reject_rate"])),
        gxe.ExpectColumnMeanToBeBetween(column="face_found", min_value=float(cfg["min_face_found_rate"]), max_value=1),
    ]
    if read is not None:
        exps.insert(0, gxe.ExpectTableRowCountToEqual(value=int(read)))
    exps += [
        gxe.ExpectColumnMeanToBeBetween(column=f"reason_{name}", min_value=0, max_value=float(limit))
        for name, limit in sorted((cfg.get("max_reason_rates") or {}).items())
    ]
    return exps


# ---------------------------------------------------------------- running


@dataclass
class SuiteResult:
    """One suite's outcome, reduced to what the reports show."""

    source: str
    suite: str
    success: bool
    expectations: list[dict[str, Any]]
    docs_page: str | None = None  # path of the GX validation page, relative to the report dir


@dataclass
class SourceResult:
    source: str
    table: str
    metrics: dict[str, Any]
    class_counts: dict[str, int]
    suites: list[SuiteResult] = field(default_factory=list)
    rates: dict[str, float | None] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return all(s.success for s in self.suites)


@dataclass
class Report:
    """The outcome of one validation run and where its reports are."""

    report_dir: Path
    sources: list[SourceResult]
    started: str
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return all(s.success for s in self.sources)

    @property
    def index_html(self) -> Path:
        return self.report_dir / "index.html"

    def failures(self) -> list[str]:
        """'source.suite: expectation(column) observed ...' for every failed expectation."""
        out = []
        for src in self.sources:
            for suite in src.suites:
                for e in suite.expectations:
                    if not e["success"]:
                        out.append(f"{suite.suite}: {e['type']}({e['column'] or ''}) {describe_observed(e)}")
        return out

    def failure_message(self) -> str:
        lines = [f"validation failed: {len(self.failures())} expectation(s)"] + [f"  {f}" for f in self.failures()]
        lines.append(
            f"report: {self.index_html} (offline); Great Expectations Data Docs: {self.report_dir / 'gx' / 'index.html'}"
        )
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        """What summary.json (DVC metrics) holds."""
        return {
            "success": self.success,
            "validated_at": self.started,
            "sources": {
                s.source: {
                    "success": s.success,
                    "expectations": sum(len(x.expectations) for x in s.suites),
                    "failed": sum(not e["success"] for x in s.suites for e in x.expectations),
                    "read": s.metrics.get("read"),
                    "curated": s.metrics.get("curated"),
                    "rejected": s.metrics.get("rejected"),
                    **{k: v for k, v in s.rates.items()},
                    "class_share": class_shares(s.class_counts),
                }
                for s in self.sources
            },
        }


def class_shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: round(v / total, 4) if total else 0.0 for k, v in counts.items()}


def describe_observed(e: Mapping[str, Any]) -> str:
    """A short human reading of an expectation result (observed value or unexpected examples)."""
    r = e.get("result") or {}
    if "observed_value" in r and r["observed_value"] is not None:
        value = r["observed_value"]
        text = f"observed {round(value, 4) if isinstance(value, float) else value}"
    elif "unexpected_count" in r:
        text = f"{r['unexpected_count']} unexpected ({round(r.get('unexpected_percent') or 0.0, 2)}%)"
        if r.get("partial_unexpected_list"):
            text += f", e.g. {', '.join(map(str, r['partial_unexpected_list'][:3]))}"
    else:
        text = "no observed value"
    return text if e["success"] else f"{text} (expected {criteria(e)})"


def criteria(e: Mapping[str, Any]) -> str:
    """The expectation's arguments in words, without the column and batch plumbing."""
    kwargs = e["kwargs"]
    skip = {"column", "batch_id", "column_A", "column_B", "ignore_row_if", "result_format"}
    parts = [f"{k}={v}" for k, v in kwargs.items() if k not in skip and v is not None]
    if "column_A" in kwargs:
        parts.insert(0, f"equal to {kwargs['column_B']}")
    if not parts:  # e.g. expect_column_values_to_be_unique -> "be unique"
        parts = [e["type"].removeprefix("expect_column_values_to_").removeprefix("expect_").replace("_", " ")]
    return ", ".join(parts)


class Validator:
    """One Great Expectations context for a run: suites in code, Data Docs inside the project."""

    def __init__(self, report_dir: Path):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.report_dir = report_dir
        self.site_dir = report_dir / "gx"
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        # The ephemeral context's default site points at a mkdtemp() folder: replace it.
        for name in list(self.ctx.get_config().data_docs_sites or {}):
            self.ctx.delete_data_docs_site(name)
        self.ctx.add_data_docs_site(
            site_name="fer_data",
            site_config={
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(self.site_dir.resolve()),
                },
            },
        )
        self.datasource = self.ctx.data_sources.add_pandas("fer_data")
        self.identifiers: list[Any] = []

    def run(self, name: str, frame: pd.DataFrame, expectations: list) -> SuiteResult:
        """Validate FRAME against a new suite NAME through its checkpoint (Data Docs: `build_docs`)."""
        gx = self.gx
        batch = self.datasource.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole table")
        # One store write for the whole suite (add_expectation one by one re-serialises it each time).
        suite = self.ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        vd = self.ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = self.ctx.checkpoints.add(
            gx.Checkpoint(name=name, validation_definitions=[vd], result_format="SUMMARY")
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        ((identifier, vr),) = result.run_results.items()
        self.identifiers.append(identifier)
        return SuiteResult(
            source=name.split(".")[0],
            suite=name,
            success=bool(vr.success),
            expectations=[_expectation_row(r) for r in vr.results],
            docs_page=None,
        )

    def build_docs(self, results: Iterable[SuiteResult]) -> None:
        """Render every suite and validation page of this run once, then link them from the results.

        One site build for the run instead of an UpdateDataDocsAction per checkpoint: each
        action re-renders the index and recompiles the templates (about 2 s apiece here).
        """
        self.ctx.build_data_docs(site_names=["fer_data"])
        from fer_data.reports import gx_offline  # the pages' CDN assets, served from the site itself

        gx_offline.localise(self.site_dir)
        for result, identifier in zip(results, self.identifiers):
            result.docs_page = self._docs_page(identifier)

    def _docs_page(self, identifier: Any) -> str | None:
        """The validation result's page, relative to the report folder (None if not rendered)."""
        try:
            urls = self.ctx.get_docs_sites_urls(resource_identifier=identifier, site_name="fer_data")
        except Exception:
            return None
        for entry in urls:
            url = entry.get("site_url") or ""
            path = Path(url.removeprefix("file://"))
            if path.exists():
                return path.relative_to(self.report_dir.resolve()).as_posix()
        return None


def _expectation_row(r: Any) -> dict[str, Any]:
    cfg = r.expectation_config
    kwargs = dict(cfg.kwargs)
    column = kwargs.get("column") or (f"{kwargs['column_A']}, {kwargs['column_B']}" if "column_A" in kwargs else None)
    return {
        "type": cfg.type,
        "column": column,
        "kwargs": _jsonable(kwargs),
        "success": bool(r.success),
        "result": _jsonable({k: v for k, v in dict(r.result).items() if k not in ("partial_unexpected_index_list",)}),
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


@dataclass(frozen=True)
class TableRef:
    """A curation output folder (fer-data curate --out) and the source it holds."""

    source: str
    path: Path

    @classmethod
    def from_dir(cls, path: str | Path) -> TableRef:
        p = Path(path)
        metrics = p / METRICS
        if not (p / CURATED).exists():
            raise FileNotFoundError(f"{p} has no {CURATED}: not a `fer-data curate` output")
        source = json.loads(metrics.read_text()).get("source") if metrics.exists() else None
        return cls(source or p.name, p)


def validate_source(v: Validator, ref: TableRef, params: Params, raw: Mapping[str, Any] | None) -> SourceResult:
    """Both suites of one curated source."""
    cfg = settings(raw, ref.source)
    metrics_path = ref.path / METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    curated = curated_frame(ref.path / CURATED, params.target.classes)
    counts = {c: int((curated["label"] == c).sum()) for c in params.target.classes}
    suites = [v.run(f"{ref.source}.curated", curated, curated_expectations(ref.source, params, cfg))]
    limits = list((cfg.get("max_reason_rates") or {}).keys())
    outcomes = outcomes_frame(ref.path / REJECTS, curated, cfg["policy_reasons"], limits, sources.reasons(ref.source))
    del curated
    suites.append(v.run(f"{ref.source}.rejects", outcomes, rejects_expectations(ref.source, cfg, metrics.get("read"))))
    rates = {
        "reject_rate": _mean(outcomes["data_reject"]),
        "face_found_rate": _mean(outcomes["face_found"]),
        "rejected_share_all_reasons": round(float(outcomes["reason"].notna().mean()), 4) if len(outcomes) else None,
    }
    return SourceResult(ref.source, str(ref.path), metrics, counts, suites, rates)


def _mean(series: pd.Series) -> float | None:
    value = series.astype("Float64").mean()
    return None if pd.isna(value) else round(float(value), 4)


def validate_tables(
    tables: Sequence[TableRef], params: Params, raw: Mapping[str, Any] | None, report_dir: str | Path
) -> Report:
    """Run every table's suites, update Data Docs, write index.html and summary.json; never raises on failure."""
    from fer_data import validation_report

    names = [t.source for t in tables]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"more than one table for source(s) {', '.join(dupes)}: validate them in separate runs")
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    _clear_site(report_dir / "gx")
    start = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    v = Validator(report_dir)
    results = []
    for ref in tables:
        res = validate_source(v, ref, params, raw)
        log.info(
            "%s: %s (%d expectations, %d failed; reject rate %s, face-found rate %s)",
            ref.source,
            "passed" if res.success else "FAILED",
            sum(len(s.expectations) for s in res.suites),
            sum(not e["success"] for s in res.suites for e in s.expectations),
            res.rates["reject_rate"],
            res.rates["face_found_rate"],
        )
        results.append(res)
    v.build_docs([suite for res in results for suite in res.suites])
    report = Report(report_dir, results, started, round(time.perf_counter() - start, 3))
    (report_dir / "summary.json").write_text(json.dumps(report.summary(), indent=2, sort_keys=True) + "\n")
    validation_report.write(report, params, raw)
    return report


def _clear_site(site: Path) -> None:
    """Each run's Data Docs show that run only (the ephemeral stores hold nothing older)."""
    import shutil

    if site.exists():
        shutil.rmtree(site)


def tables_from_params(
    raw: Mapping[str, Any] | None, curated_root: str | Path, names: Sequence[str] = ()
) -> list[TableRef]:
    """CURATED_ROOT/<name> for the named sources, or for every source in params.yaml's `sources`."""
    chosen = list(names) or list(((raw or {}).get("sources") or {}).keys())
    if not chosen:
        raise ValueError("no sources to validate: name tables, or list sources in params.yaml")
    return [TableRef(n, Path(curated_root) / n) for n in chosen]
