"""The review page: self-contained HTML for stewards (images inline, CSS inline, no script, no request).

Flagged faces first (by rank), then ambiguous ones, up to `review.max_faces`; each card shows
the original file beside the aligned face (the aligned face alone where the source has no
files), the given label, the out-of-fold predicted distribution as small bars, FER+ votes where
the row has them, the suggested action and the decisions.csv line that would record it, and the
decision already made for it. Then every decision on file, with the ones the corpus could not apply.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fer_data.corpus import decisions as decisions_mod
from fer_data.reports import html as H
from fer_data.reports.corpus import Corpus, Images, report_params
from fer_data.review.params import ReviewParams

CSS = """
.cards{display:flex;flex-wrap:wrap;gap:10px}.cards .card{width:330px;font-size:12px}
.card .pics{display:flex;gap:8px;align-items:flex-start}.card img{border:1px solid var(--line)}
.act{font-weight:600}.act.relabel{color:#0a58ca}.act.drop{color:#b42318}.act.keep{color:#116329}
.done{background:#eef6ee;border-radius:4px;padding:2px 4px;margin-top:4px}code.line{display:block;margin-top:4px;overflow-wrap:anywhere}
svg.mini text{font:10px system-ui,sans-serif;fill:var(--fg)}
"""
#: Mini bar chart geometry (px): one row a class, readable at 7-8 classes in a 330 px card.
MINI_ROW, MINI_LABEL, MINI_BAR = 12, 66, 70
#: On-screen width of a card's picture: with the 170 px chart it fills the 330 px card without overflowing.
PICTURE_PX = 140
#: Below this many times chance accuracy the page warns that flags mostly reflect the model's errors: confident
#: learning on calibrated probabilities needs ~90 % accuracy for precision 0.8 at 5 % noise (bench_review.py sweep).
WEAK_MODEL_TIMES_CHANCE = 3


def mini_bars(values: Sequence[float], names: Sequence[str], mark: Mapping[str, str], title: str) -> str:
    """Horizontal bars of VALUES (0-1) with their NAMES; MARK colours some names' bars (given, suggested)."""
    h = MINI_ROW * len(names) + 14
    w = MINI_LABEL + MINI_BAR + 34
    parts = [f'<svg class="mini" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{H.esc(title)}">',
             f'<text x="0" y="10" font-weight="600">{H.esc(title)}</text>']  # fmt: skip
    for i, (name, v) in enumerate(zip(names, values)):
        y = 14 + i * MINI_ROW
        v = float(np.clip(v, 0, 1)) if np.isfinite(v) else 0.0
        colour = mark.get(name, "#9aa7b4")
        parts.append(
            f'<text x="{MINI_LABEL - 4}" y="{y + 9}" text-anchor="end">{H.esc(name)}</text>'
            f'<rect x="{MINI_LABEL}" y="{y + 2}" width="{MINI_BAR * v:.1f}" height="{MINI_ROW - 4}" fill="{colour}"/>'
            f'<text x="{MINI_LABEL + MINI_BAR * v + 3:.1f}" y="{y + 9}">{v:.2f}</text>'
        )
    return "".join(parts) + "</svg>"


def _decision_line(row: Mapping[str, Any]) -> str:
    new = row["suggested_label"] or ""
    return f"{row['sample_id']},{row['action']},{new},<you>,<why>"


def _card(row: Mapping[str, Any], images: Images, classes: list[str], canonical: list[str], done: dict | None) -> str:
    picture, what = images.original_and_aligned(row["sample_id"], row["source"], str(row["locator"]))
    pic = (
        H.img_tag(picture, f"{row['label']} face", width=min(picture.shape[1] * 2, PICTURE_PX), title=what)
        if picture is not None
        else "<p class=muted>no image</p>"
    )
    mark = {row["label"]: "#E69F00"} | ({row["suggested_label"]: "#0072B2"} if row["suggested_label"] else {})
    charts = mini_bars(row["probs"], classes, mark, "predicted (out-of-fold)")
    if row.get("votes") is not None:
        votes = np.asarray(row["votes"], np.float64)
        charts += mini_bars(votes / max(votes.sum(), 1e-9), canonical, mark, "FER+ votes")
    action = row["action"] + (f" to {row['suggested_label']}" if row["action"] == "relabel" else "")
    tags = [t for t, on in (("flagged", row["issue"]), ("ambiguous", row["ambiguous"])) if on]
    decided = ""
    if done:
        to = f" to {done['new_label']}" if done["action"] == "relabel" else ""
        decided = f"<div class=done>decided: <b>{H.esc(done['action'] + to)}</b> by {H.esc(done.get('who') or '?')}: {H.esc(done.get('why') or '')}</div>"
    return (
        "<div class=card>"
        f"<div class=pics>{pic}<div>{charts}</div></div>"
        f"<div>given <b>{H.esc(row['label'])}</b> ({H.esc(row['label_source'])}) · rank {row['rank']} · score {row['score']:.3f}"
        f" · {H.esc(', '.join(tags) or '-')}</div>"
        f"<div>suggested: <span class='act {H.esc(row['action'])}'>{H.esc(action)}</span></div>"
        f"<div class=muted>{H.esc(row['source'])}: {H.esc(row['locator'])}</div>{decided}"
        f"<code class=line>{H.esc(_decision_line(row))}</code></div>"
    )


def _shown(table: pa.Table, limit: int) -> list[dict[str, Any]]:
    """Flagged rows by rank, then ambiguous ones, LIMIT in all (the table is sorted by rank)."""
    cols = table.select(["sample_id", "issue", "ambiguous"]).to_pandas()
    order = list(np.flatnonzero(cols["issue"])) + list(np.flatnonzero(~cols["issue"] & cols["ambiguous"]))
    return table.take(pa.array(order[:limit], pa.int64())).to_pylist() if order else []


def _decisions(path: Path | None, classes: list[str]) -> tuple[dict[str, dict], str]:
    """(sample_id -> decision, the page's decisions section)."""
    if path is None:
        return {}, "<p class=muted>review.decisions is not set: no decisions file.</p>"
    if not path.exists():
        return {}, f"<p class=muted>{H.esc(path)} does not exist yet.</p>"
    usable, problems = decisions_mod.read(path, classes)
    rows = [[d["line"], d["sample_id"], d["action"], d["new_label"], d["who"], d["why"]] for d in usable]
    body = H.table(["line", "sample_id", "action", "new label", "who", "why"], rows, numeric=[0]) if rows else (
        f"<p class=muted>{H.esc(path)} holds no decisions yet.</p>")  # fmt: skip
    if problems:
        body += "<h3>Lines the corpus cannot apply</h3>" + H.table(
            ["line", "sample_id", "action", "problem"],
            [[p["line"], p.get("sample_id"), p.get("action"), p["problem"]] for p in problems],
            numeric=[0],
        )
    return {d["sample_id"]: d for d in usable}, body


#: How review.oof.person_features reads on the page.
PERSON_FEATURES = {
    "both": "with person-centred twins",
    "centred": "person-centred features",
    "raw": "raw features",
}


def _model_line(oof: dict) -> str:
    """'landmark_hog_logreg with person-centred twins, 3 folds by leak group' (the page's overview)."""
    person = PERSON_FEATURES.get(oof.get("person_features") or "")
    return f"{oof['model']}{' ' + person if person else ''}, {oof['folds']} folds by leak group"


def render(corpus_dir: Path, table: pa.Table, summary: dict, p: ReviewParams) -> str:
    corpus = Corpus.load(corpus_dir)
    classes, canonical = summary["classes"], list(corpus.manifest.get("canonical_classes") or [])
    rows = _shown(table, p.max_faces)
    images = Images(corpus, report_params({"thumb_px": p.thumb_px}))
    images.load(r["sample_id"] for r in rows)
    votes = {k: v.get("label_votes") for k, v in images.rows.items()} if rows else {}
    done, decisions_html = _decisions(Path(p.decisions) if p.decisions else None, classes)
    cards = [
        _card(r | {"votes": votes.get(r["sample_id"])}, images, classes, canonical, done.get(r["sample_id"]))
        for r in rows
    ]
    o = summary["oof"]
    overview = H.table(
        ["train rows", "flagged", "ambiguous", "suggested relabel / drop", "estimated noise rate", "out-of-fold model", "OOF accuracy"],
        [[summary["rows"], summary["flagged"], summary["ambiguous"],
          f"{summary['suggested']['relabel']} / {summary['suggested']['drop']}", summary["estimated_noise_rate"],
          _model_line(o), o["accuracy"]]],
        numeric=[0, 1, 2, 4, 6],
    )  # fmt: skip
    if o["accuracy"] < WEAK_MODEL_TIMES_CHANCE / max(len(classes), 1):
        overview += (
            f"<p class=fail>The out-of-fold model is weak (accuracy {o['accuracy']} with {len(classes)} classes): most "
            "flags are its own mistakes, not label errors. The ranking is still the best order to look in; more faces "
            "or a stronger model (review.oof.model) make the flags meaningful (BENCHMARKS.md, Label review).</p>"
        )
    how = (
        f"<p>Record a decision as one line of <code>{H.esc(p.decisions or 'review.decisions')}</code> "
        "(<code>sample_id,action,new_label,who,why</code>; action <b>relabel</b> with a new label from the target set, "
        "<b>drop</b>, or <b>keep</b>); each card shows the line for its suggestion. The next <code>dvc repro</code> "
        "rebuilds the corpus with them: relabelled rows carry <code>label_source = review</code>, dropped rows stay "
        "in groups.parquet with <code>drop_reason = review</code>.</p>"
    )
    joint = H.table(["given \\ estimated true", *classes],
                    [[c, *row] for c, row in zip(classes, summary["joint"])], numeric=range(1, len(classes) + 1))  # fmt: skip
    thresholds = H.table(
        ["class", "threshold (mean self-confidence)"], list(summary["thresholds"].items()), numeric=[1], full=False
    )
    shown_note = f"{len(rows)} of {summary['flagged']} flagged and {summary['ambiguous']} ambiguous faces (review.max_faces = {p.max_faces}); label_issues.parquet ranks every row."
    faces = (
        "<div class=cards>" + "".join(cards) + "</div>" if cards else "<p class=muted>no flagged or ambiguous faces</p>"
    )
    method = (
        "<p>Confident learning (Northcutt et al., JAIR 2021) on out-of-fold probabilities: a row is flagged "
        f"by <code>{H.esc(p.filter_by)}</code> and ranked by <code>{H.esc(p.rank_by)}</code>; ambiguous when the "
        f"prediction's normalised entropy is at least {p.ambiguous_entropy} or its FER+ votes give the top class "
        f"less than {p.ambiguous_vote_share} of them.</p><h3>Estimated joint of given and true labels</h3>"
    )
    body = (
        H.toc(
            [("overview", "Overview"), ("faces", "Faces to review"), ("decisions", "Decisions"), ("method", "Method")]
        )
        + H.section("overview", "Overview", overview + how)
        + H.section("faces", "Faces to review", faces, shown_note)
        + H.section("decisions", "Decisions already made", decisions_html)
        + H.section("method", "Method", method + joint + "<h3>Per-class thresholds</h3>" + thresholds)
    )
    return H.page(f"Label review: {corpus_dir}", body, css=CSS)


def write_page(path: Path, corpus_dir: Path, table: pa.Table, summary: dict, p: ReviewParams) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(corpus_dir, table, summary, p), encoding="utf-8")
    os.replace(tmp, path)
    return path
