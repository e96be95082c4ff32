"""REPORT/index.html: a self-contained validation report that a data steward can open offline.

Great Expectations' Data Docs are a maze of pages per suite and run (served offline by
fer_data.reports.gx_offline); this page puts a run on one page. It is
plain HTML built on the shared helpers (fer_data.reports.html: inline CSS, no external assets):
per source, its counts, class proportions and every expectation with pass/fail and observed
value, with links to the Data Docs pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fer_data.params import Params
from fer_data.reports.html import esc as _e
from fer_data.reports.html import page

if TYPE_CHECKING:
    from fer_data.validate import Report, SourceResult, SuiteResult


def _status(ok: bool) -> str:
    return '<span class="pass">pass</span>' if ok else '<span class="fail">FAIL</span>'


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _overview(report: Report) -> str:
    rows = []
    for s in report.sources:
        failed = sum(not e["success"] for x in s.suites for e in x.expectations)
        total = sum(len(x.expectations) for x in s.suites)
        rows.append(
            f'<tr class="{"" if s.success else "failrow"}"><td><a href="#{_e(s.source)}">{_e(s.source)}</a></td>'
            f"<td>{_status(s.success)}</td><td class=num>{_e(s.metrics.get('read'))}</td>"
            f"<td class=num>{_e(s.metrics.get('curated'))}</td><td class=num>{_e(s.metrics.get('rejected'))}</td>"
            f"<td class=num>{_pct(s.rates.get('reject_rate'))}</td><td class=num>{_pct(s.rates.get('face_found_rate'))}</td>"
            f"<td class=num>{failed} / {total}</td></tr>"
        )
    head = (
        "<tr><th>source</th><th>status</th><th>read</th><th>curated</th><th>rejected</th>"
        "<th>reject rate (data problems)</th><th>face-found rate</th><th>failed expectations</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _failures(report: Report) -> str:
    items = report.failures()
    if not items:
        return ""
    return (
        "<h2>Failed expectations</h2><ul class=failures>"
        + "".join(f"<li><code>{_e(f)}</code></li>" for f in items)
        + "</ul>"
    )


def _counts(s: SourceResult) -> str:
    reasons = s.metrics.get("rejected_by_reason") or {}
    rows = "".join(f"<tr><td>{_e(k)}</td><td class=num>{_e(v)}</td></tr>" for k, v in sorted(reasons.items()))
    rejects = (
        f"<table><tr><th>reject reason</th><th>count</th></tr>{rows}</table>"
        if rows
        else "<p class=muted>No rejects.</p>"
    )
    total = sum(s.class_counts.values())
    bars = "".join(
        f"<tr><td>{_e(label)}</td><td class=num>{n}</td><td class=num>{_pct(n / total if total else 0.0)}</td>"
        f'<td><span class="bar" style="width:{(300 * n / total) if total else 0:.0f}px"></span></td></tr>'
        for label, n in s.class_counts.items()
    )
    classes = f"<table><tr><th>class</th><th>curated rows</th><th>share</th><th></th></tr>{bars}</table>"
    return f"<h3>Class proportions</h3>{classes}<h3>Rejects by reason</h3>{rejects}"


def _suite(suite: SuiteResult) -> str:
    from fer_data.validate import criteria, describe_observed

    link = f' &middot; <a href="{_e(suite.docs_page)}">Data Docs page</a>' if suite.docs_page else ""
    rows = "".join(
        f'<tr class="{"" if e["success"] else "failrow"}"><td>{_status(e["success"])}</td><td><code>{_e(e["type"])}</code></td>'
        f"<td>{_e(e['column'])}</td><td>{_e(criteria(e))}</td><td>{_e(describe_observed(e))}</td></tr>"
        for e in suite.expectations
    )
    head = "<tr><th>result</th><th>expectation</th><th>column</th><th>criteria</th><th>observed</th></tr>"
    return f"<h3>Suite <code>{_e(suite.suite)}</code>: {_status(suite.success)}{link}</h3><table>{head}{rows}</table>"


def _source(s: SourceResult) -> str:
    badge = f'<span class="badge {"pass" if s.success else "fail"}">{"passed" if s.success else "FAILED"}</span>'
    return (
        f'<h2 id="{_e(s.source)}">{_e(s.source)} {badge}</h2><p class=muted>table: <code>{_e(s.table)}</code></p>'
        + _counts(s)
        + "".join(_suite(x) for x in s.suites)
    )


def render(report: Report, params: Params, raw: Mapping[str, Any] | None = None) -> str:
    """The whole page as a string."""
    badge = (
        f'<span class="badge {"pass" if report.success else "fail"}">{"PASSED" if report.success else "FAILED"}</span>'
    )
    intro = (
        f"<p>Validated {len(report.sources)} source(s) at {_e(report.started)} in {report.seconds:.1f} s; "
        f"target set <code>{_e(params.target.name)}</code> ({_e(', '.join(params.target.classes))}). "
        "Thresholds come from the <code>validation:</code> block of params.yaml. "
        'Great Expectations Data Docs: <a href="gx/index.html">gx/index.html</a> '
        "(they open offline: their scripts and styles are served from gx/static/vendor/, fetched at set-up). "
        'Machine-readable: <a href="summary.json">summary.json</a>.</p>'
    )
    body = intro + _overview(report) + _failures(report) + "".join(_source(s) for s in report.sources)
    return page("fer-data validation", body, heading=f"fer-data validation {badge}")


def write(report: Report, params: Params, raw: Mapping[str, Any] | None = None) -> None:
    report.index_html.write_text(render(report, params, raw), encoding="utf-8")
