"""The drift report: one self-contained HTML page (fer_data.reports.html: inline CSS, SVG, data: URIs).

Verdict and table of checks first; then the class mix side by side, reference vs batch
histograms of every quality feature, and faces of the batch from its most shifted region (the
PSI bin of the most shifted feature that the batch over-fills most), next to reference faces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_data.drift.checks import FAIL, Check
from fer_data.drift.ingest import Batch, faces_of
from fer_data.drift.ledger import Entry
from fer_data.drift.profile import DISPLAY_QUANTILES, Profile
from fer_data.reports import html as h

#: Faces shown from the most shifted region, and reference faces beside them.
REGION_FACES = 24
REFERENCE_FACES = 12
REPORT_FILE = "index.html"


def render(profile: Profile, batch: Batch, checks: list[Check], doc: dict[str, Any]) -> str:
    verdict = doc["verdict"]
    badge = f'<span class="badge {verdict}">{"PASS" if verdict != FAIL else "FAIL"}</span>'
    lead = (
        f"<p class=lead>{badge} batch <code>{h.esc(batch.path)}</code>: {batch.rows} face(s) checked against "
        f"<code>{h.esc(profile.reference)}</code> ({profile.rows} rows). Family-wise false-alarm rate "
        f"{doc['alpha']} ({h.esc(doc['correction'])} correction over every test with a p-value).</p>"
    )
    body = [
        lead,
        h.section("checks", "Checks", _checks_table(checks)),
        h.section("classes", "Class mix", _class_mix(profile, checks)),
        h.section("features", "Quality features", _histograms(profile, batch)),
        h.section("region", "Most shifted region", _region(profile, batch, checks)),
    ]
    return h.page(f"Drift check: {batch.path}", "".join(body))


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def _checks_table(checks: list[Check]) -> str:
    rows = []
    for c in checks:
        cls = {"fail": "fail", "pass": "pass"}.get(c.verdict, "muted")
        rows.append(
            [
                c.name,
                c.test,
                _fmt(c.statistic),
                _fmt(c.p_value),
                _fmt(c.p_adjusted),
                _fmt(c.distance),
                ", ".join(f"{k} {v:g}" for k, v in c.threshold.items()),
                "" if c.n_batch is None else c.n_batch,
                h.Raw(f'<span class="{cls}">{h.esc(c.verdict)}</span>'),
                c.detail,
            ]
        )
    return h.table(
        ["check", "test", "statistic", "p", "p adjusted", "PSI / MMD²", "threshold", "batch n", "verdict", "detail"],
        rows,
        numeric=(2, 3, 4, 5, 7),
    )


def _class_mix(profile: Profile, checks: list[Check]) -> str:
    parts = []
    for c in checks:
        if c.name in ("label_shift", "predicted_class_shift") and c.extra:
            data = {
                "reference": dict(zip(profile.classes, c.extra["reference"], strict=True)),
                "batch": dict(zip(profile.classes, c.extra["batch"], strict=True)),
            }
            parts.append(h.grouped_bars(data, profile.classes, title=c.name.replace("_", " "), ylabel="share"))
    return "".join(parts) or "<p class=muted>no labels or model predictions in this batch</p>"


def _histograms(profile: Profile, batch: Batch) -> str:
    charts = []
    for name, ref in profile.features.items():
        values = batch.features.get(name)
        if values is None or ref.n == 0:
            continue
        present = values[~np.isnan(values)]
        lo, hi = float(ref.display_edges[0]), float(ref.display_edges[-1])
        if len(present):
            blo, bhi = np.quantile(present, DISPLAY_QUANTILES)
            lo, hi = min(lo, float(blo)), max(hi, float(bhi))
        charts.append(
            h.histogram(
                {"reference": ref.sample, "batch": present},
                bins=len(ref.display_edges) - 1,
                value_range=(lo, hi),
                title=name,
                xlabel=name,
            )
        )
    return '<div class="row">' + "".join(charts) + "</div>"


def shifted_region(profile: Profile, batch: Batch, checks: list[Check]) -> tuple[str, int, float, float] | None:
    """(feature, bin, low, high): the PSI bin the batch over-fills most, of the most shifted feature."""
    covariate = [c for c in checks if c.name.startswith("covariate.") and c.distance is not None]
    if not covariate:
        return None
    worst = max(covariate, key=lambda c: (c.verdict == FAIL, c.distance))
    feature = worst.name.removeprefix("covariate.")
    ref = profile.features[feature]
    excess = worst.extra["psi_shares"] - ref.psi_shares
    k = int(np.argmax(excess))
    edges = np.concatenate([[-np.inf], ref.psi_edges, [np.inf]])
    return feature, k, float(edges[k]), float(edges[k + 1])


def _region(profile: Profile, batch: Batch, checks: list[Check]) -> str:
    region = shifted_region(profile, batch, checks)
    if region is None:
        return "<p class=muted>no quality feature to compare</p>"
    feature, k, lo, hi = region
    values = batch.features[feature]
    inside = np.flatnonzero((values >= lo) & (values < hi))
    ids = [batch.sample_ids[i] for i in inside[:REGION_FACES]]
    faces = faces_of(batch.table, ids)
    value_of = {batch.sample_ids[i]: values[i] for i in inside[:REGION_FACES]}
    ref_share = profile.features[feature].psi_shares
    note = (
        f"<p>{h.esc(feature)} in [{lo:.4g}, {hi:.4g}): {len(inside)} of {batch.rows} batch faces "
        f"({len(inside) / max(batch.rows, 1):.0%}) against {ref_share[k]:.0%} of the reference.</p>"
    )
    grid = h.face_grid(
        [h.Face(faces[i], [f"{feature} {value_of[i]:.3g}"]) for i in ids if i in faces], empty="no faces in it"
    )
    ref_faces = (
        ""
        if profile.faces is None
        else h.face_grid([h.Face(f, ["reference"]) for f in profile.faces[:REFERENCE_FACES]])
    )
    return note + "<h3>Batch faces in the region</h3>" + grid + "<h3>Reference faces (random)</h3>" + ref_faces


def render_index(entries: list[Entry], inbox: str, out_root: Path) -> str:
    """The page of every checked batch with its verdict, newest first, each linking to its report."""
    import datetime as dt

    rows = []
    for e in sorted(entries, key=lambda e: (e.finished_at or float("inf"), e.name), reverse=True):
        verdict = e.verdict or ("error" if e.last_error else e.state)
        cls = {"pass": "pass", "fail": "fail", "error": "fail"}.get(verdict, "muted")
        link = ""
        if e.report:
            rel = Path(e.report, REPORT_FILE).resolve().relative_to(out_root.resolve()).as_posix()
            link = h.Raw(f'<a href="{h.esc(rel)}">report</a>')
        when = dt.datetime.fromtimestamp(e.finished_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if e.finished_at else ""
        rows.append(
            [
                e.name,
                when,
                h.Raw(f'<span class="{cls}">{h.esc(verdict)}</span>'),
                ", ".join(e.failed_checks) or (e.last_error or "")[-200:],
                e.attempts,
                link,
            ]
        )
    failed = sum(e.verdict == FAIL for e in entries)
    lead = f"<p class=lead>Inbox <code>{h.esc(inbox)}</code>: {len(entries)} batch(es) checked, {failed} failed.</p>"
    table = h.table(["batch", "checked", "verdict", "failed checks / error", "attempts", ""], rows, numeric=(4,))
    return h.page("Drift checks", lead + table)
