"""Building blocks for self-contained HTML pages: they open from a file on an air-gapped machine.

Face data is often handled where there is no internet, and stewards would rather look than read.
So every page is one file: CSS inline, images inline as PNG data: URIs, charts as inline SVG, no
script, no font or stylesheet from anywhere else. Everything that comes from data (locators are
file names from user folders, labels come from CSV files) goes through `esc`.

Pieces, each returning an HTML string unless it says otherwise:
`page` (the document), `section`, `table`, `img_data_uri` / `img_tag` / `thumbnail` (images),
`bar_chart`, `grouped_bars`, `histogram` (SVG charts), `face_grid` (faces with captions),
`draw_landmarks` (a face with its 68 points), `side_by_side` (an original beside its aligned face).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

CSS = """
:root{--fg:#1d2329;--muted:#57606a;--line:#d0d7de;--head:#f3f5f7;--pass:#1a7f37;--fail:#cf222e}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;color:var(--fg);padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 4px}p.lead{margin-top:0}
table{border-collapse:collapse;margin:8px 0 16px;width:100%}th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--head)}table.auto{width:auto;min-width:40%}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#116329;font-weight:600}.fail{color:#b42318;font-weight:600}tr.failrow{background:#fff1f0}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-size:13px}.badge.pass{background:var(--pass);color:#fff}.badge.fail{background:var(--fail);color:#fff}
.bar{background:#4f7cac;height:12px;display:inline-block;vertical-align:middle}.muted{color:var(--muted)}code{font-size:12px}
ul.failures li{margin:2px 0}nav.toc{columns:3;font-size:13px}nav.toc a{display:block}
.grid{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 14px}
figure.face{margin:0;width:min-content;text-align:center;font-size:11px;line-height:1.25;color:var(--muted)}
figure.face img{display:block;border:1px solid var(--line);background:#fff}
figure.face figcaption{margin-top:2px;overflow-wrap:anywhere;min-width:64px}
img.px{image-rendering:pixelated}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px;margin:6px 0}
svg.chart{display:block;margin:6px 0 14px;max-width:100%;height:auto}svg.chart text{font:11px system-ui,sans-serif;fill:var(--fg)}
@media print{body{max-width:none;margin:0}h2{break-after:avoid}figure.face,.card,svg.chart,tr{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""

# Series colours for charts: colour-blind-safe (Okabe-Ito), in the order series are given.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

# Landmark groups of dlib's 68-point scheme (index ranges) and their colours, so a misfit part stands out.
LANDMARK_GROUPS = {
    "jaw": (range(0, 17), (0, 114, 178)),
    "brows": (range(17, 27), (230, 159, 0)),
    "nose": (range(27, 36), (0, 158, 115)),
    "eyes": (range(36, 48), (213, 94, 0)),
    "mouth": (range(48, 68), (204, 121, 167)),
}
# The closed contours among them (eyes and lips), drawn as loops; the rest are open polylines.
_CLOSED = (range(36, 42), range(42, 48), range(48, 60), range(60, 68))
_OPEN = (range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36))


def esc(value: Any) -> str:
    """Text for HTML (also attribute-safe: quotes are escaped); None becomes the empty string."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, heading: str | None = None, css: str = "") -> str:
    """A whole document: TITLE in the tab, HEADING (HTML, defaults to the escaped title) on top, BODY after."""
    top = heading if heading is not None else esc(title)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}{css}</style></head>"
        f"<body><h1>{top}</h1>{body}</body></html>\n"
    )


def section(anchor: str, title: str, body: str, note: str = "") -> str:
    """An <h2> with an id (for a table of contents), an optional muted explanation, then BODY."""
    lead = f"<p class=muted>{note}</p>" if note else ""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{lead}{body}</section>'


def toc(entries: Iterable[tuple[str, str]]) -> str:
    """Links to sections: (anchor, title) pairs."""
    return "<nav class=toc>" + "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in entries) + "</nav>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (), full: bool = True) -> str:
    """A table of escaped cells; columns whose index is in NUMERIC are right-aligned; FULL: page-wide.

    A cell that is a `Raw` is inserted as it is (an image, a link): everything else is escaped.
    """
    num = set(numeric)
    head = "".join(f"<th{' class=num' if i in num else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in num else ''}>{_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table{'' if full else ' class=auto'}><tr>{head}</tr>{body}</table>"


@dataclass(frozen=True)
class Raw:
    """HTML that is already safe (built by these helpers), for `table` cells and captions."""

    html: str


def _cell(value: Any) -> str:
    if isinstance(value, Raw):
        return value.html
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


# --- images -------------------------------------------------------------------------------------


def _as_uint8(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
        raise ValueError(f"expected a grey (H, W) or RGB(A) (H, W, 3|4) image, got shape {a.shape}")
    return a


def img_data_uri(arr: np.ndarray) -> str:
    """A PNG data: URI of a uint8 grey (H, W) or RGB / RGBA (H, W, 3|4) array (RGB order, not OpenCV's BGR)."""
    a = _as_uint8(arr)
    if a.ndim == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR if a.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, png = cv2.imencode(".png", a)
    if not ok:  # pragma: no cover - cv2 encodes any valid uint8 array
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def thumbnail(arr: np.ndarray, max_side: int) -> np.ndarray:
    """ARR downscaled (area averaging) so its longer side is at most MAX_SIDE; smaller images are kept as they are.

    Pages embed thumbnails, never originals: a 640x490 CK+ frame is ~300 KB as PNG, at 160 px ~25 KB.
    """
    a = _as_uint8(arr)
    h, w = a.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return a
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(a, size, interpolation=cv2.INTER_AREA)


def img_tag(arr: np.ndarray, alt: str, *, width: int | None = None, title: str | None = None) -> str:
    """An <img> with the array inline; WIDTH (CSS px) scales small faces up on screen, pixelated (honest)."""
    a = _as_uint8(arr)
    w = width or a.shape[1]
    cls = ' class="px"' if w > a.shape[1] else ""
    tip = f' title="{esc(title)}"' if title else ""
    return f'<img src="{img_data_uri(a)}" alt="{esc(alt)}" width="{w}"{cls}{tip}>'


def side_by_side(images: Sequence[np.ndarray], height: int, gap: int = 4) -> np.ndarray:
    """Images scaled to one HEIGHT and joined left to right on white (e.g. an original and its aligned face).

    Grey inputs stay grey unless another input is RGB; small faces are enlarged with nearest
    neighbours, so what is shown is the pixels that were there.
    """
    if not images:
        raise ValueError("side_by_side needs at least one image")
    arrays = [_as_uint8(a) for a in images]
    colour = any(a.ndim == 3 for a in arrays)
    parts = []
    for a in arrays:
        if colour and a.ndim == 2:
            a = cv2.cvtColor(a, cv2.COLOR_GRAY2RGB)
        elif colour:
            a = a[:, :, :3]
        w = max(1, round(a.shape[1] * height / a.shape[0]))
        interp = cv2.INTER_NEAREST if height > a.shape[0] else cv2.INTER_AREA
        parts.append(cv2.resize(a, (w, height), interpolation=interp))
    spacer = np.full((height, gap, 3) if colour else (height, gap), 255, np.uint8)
    joined = [parts[0]]
    for part in parts[1:]:
        joined += [spacer, part]
    return np.concatenate(joined, axis=1)


@dataclass(frozen=True)
class Face:
    """One picture of a grid: the image, its caption lines (escaped), and an optional hover text."""

    image: np.ndarray
    caption: Sequence[str] = ()
    title: str | None = None


def face_grid(
    faces: Iterable[Face], *, width: int | None = 96, height: int | None = None, empty: str = "nothing to show"
) -> str:
    """Faces side by side, wrapping, each with its caption lines under it.

    WIDTH sets every picture's on-screen width; or HEIGHT sets it from each picture's aspect
    (for pictures of different shapes, such as an original beside its aligned face).
    """
    figures = []
    for f in faces:
        caption = "<br>".join(esc(line) for line in f.caption)
        alt = f.caption[0] if f.caption else "face"
        h, w = f.image.shape[:2]
        shown = round(w * height / h) if height else width
        figures.append(
            f"<figure class=face>{img_tag(f.image, alt, width=shown, title=f.title)}"
            f"<figcaption>{caption}</figcaption></figure>"
        )
    if not figures:
        return f"<p class=muted>{esc(empty)}</p>"
    return "<div class=grid>" + "".join(figures) + "</div>"


def draw_landmarks(arr: np.ndarray, points: Sequence[float] | np.ndarray, *, scale: int = 4) -> np.ndarray:
    """An RGB copy of ARR enlarged SCALE times with its 68 landmarks drawn, grouped by colour.

    POINTS are (x, y) pairs in ARR's pixel coordinates, flat (136,) or (68, 2), as the curated
    `landmarks` column holds them. Enlarging first keeps the dots and lines legible on 48 px faces.
    """
    a = _as_uint8(arr)
    rgb = cv2.cvtColor(a, cv2.COLOR_GRAY2RGB) if a.ndim == 2 else np.ascontiguousarray(a[:, :, :3])
    big = cv2.resize(rgb, (rgb.shape[1] * scale, rgb.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) != 68:
        raise ValueError(f"expected 68 landmarks, got {len(pts)}")
    # Pixel centres: point (x, y) of the small image sits at ((x + 0.5) * scale - 0.5) in the big one.
    xy = np.round((pts + 0.5) * scale - 0.5).astype(np.int32)
    colour = {i: c for idx, c in LANDMARK_GROUPS.values() for i in idx}
    for ranges, closed in ((_OPEN, False), (_CLOSED, True)):
        for idx in ranges:
            cv2.polylines(big, [xy[list(idx)]], closed, colour[idx[0]], 1, cv2.LINE_AA)
    radius = max(1, scale // 2)
    for i, (x, y) in enumerate(xy):
        cv2.circle(big, (int(x), int(y)), radius, colour[i], -1, cv2.LINE_AA)
    return big


# --- charts (inline SVG) -------------------------------------------------------------------------

_CHART_H = 180  # plot area height in px: readable with 8-10 categories, small enough to print two a page


def _fmt(v: float) -> str:
    return f"{v:.3g}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v)}"


def _legend_width(names: Sequence[str]) -> float:
    """Approximate width of `_legend` (11 px sans-serif averages under 7 px a character)."""
    return sum(24 + 7 * len(str(n)) for n in names)


def _legend(names: Sequence[str], x0: float, y: float) -> str:
    out, x = [], x0
    for i, name in enumerate(names):
        out.append(
            f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14:.0f}" y="{y:.0f}">{esc(name)}</text>'
        )
        x += _legend_width([name])
    return "".join(out)


def grouped_bars(
    data: Mapping[str, Mapping[str, float]],
    categories: Sequence[str] | None = None,
    *,
    title: str = "",
    ylabel: str = "",
    bar_w: int = 12,
) -> str:
    """Vertical bars: one group per category (x axis), one coloured bar per series in each group.

    DATA maps series name -> {category: value}; CATEGORIES fixes the x order (default: first-seen).
    Values are written on hover (<title>) so the chart stays uncluttered and still exact.
    """
    series = list(data)
    if categories is None:
        categories = list(dict.fromkeys(c for s in data.values() for c in s))
    vmax = max([float(v) for s in data.values() for v in s.values()] + [0.0]) or 1.0
    group_w = bar_w * max(1, len(series)) + 14
    left, top, bottom = 48, 28 if title else 12, 46
    show_legend = len(series) > 1 or bool(series and series[0])
    plot_right = left + group_w * max(1, len(categories))
    width = int(max(plot_right, left + (_legend_width(series) if show_legend else 0), left + 8 * len(title))) + 10
    height = top + _CHART_H + bottom + 18
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title or ylabel)}">'
    ]
    if title:
        parts.append(f'<text x="{left}" y="14" font-weight="600">{esc(title)}</text>')
    for frac in (0, 0.5, 1):  # three gridlines: 0, half, max
        y = top + _CHART_H * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{plot_right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(vmax * frac)}</text>'
        )
    if ylabel:
        parts.append(
            f'<text transform="translate(11 {top + _CHART_H / 2:.0f}) rotate(-90)" text-anchor="middle">{esc(ylabel)}</text>'
        )
    for ci, cat in enumerate(categories):
        x0 = left + ci * group_w + 7
        for si, name in enumerate(series):
            v = float(data[name].get(cat, 0) or 0)
            h = _CHART_H * v / vmax
            parts.append(
                f'<rect x="{x0 + si * bar_w}" y="{top + _CHART_H - h:.1f}" width="{bar_w - 1}" height="{h:.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{esc(name)} / {esc(cat)}: {_fmt(v)}</title></rect>'
            )
        cx = x0 + bar_w * max(1, len(series)) / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{top + _CHART_H + 6}" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {top + _CHART_H + 6})">{esc(cat)}</text>'
        )
    if show_legend:
        parts.append(_legend(series, left, height - 4))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: Mapping[str, float], *, title: str = "", ylabel: str = "", name: str = "") -> str:
    """One series of vertical bars (a grouped chart with a single series)."""
    return grouped_bars({name: values}, list(values), title=title, ylabel=ylabel, bar_w=22)


def histogram(
    series: Mapping[str, Sequence[float] | np.ndarray],
    *,
    bins: int = 30,
    value_range: tuple[float, float] | None = None,
    density: bool = True,
    title: str = "",
    xlabel: str = "",
) -> str:
    """Overlaid histograms on shared bin edges (e.g. reference vs other for drift), as step outlines.

    DENSITY normalises each series to its own total, so a 1,000-row batch compares to a
    30,000-row reference. Non-finite values are dropped (and counted in the hover text).
    """
    clean = {k: np.asarray(v, dtype=np.float64) for k, v in series.items()}
    finite = {k: v[np.isfinite(v)] for k, v in clean.items()}
    pooled = np.concatenate([v for v in finite.values()] + [np.zeros(0)])
    if value_range is None:
        value_range = (float(pooled.min()), float(pooled.max())) if len(pooled) else (0.0, 1.0)
    lo, hi = value_range
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    counts = {}
    for k, v in finite.items():
        c, _ = np.histogram(np.clip(v, lo, hi), bins=edges)
        counts[k] = c / max(1, c.sum()) if density else c.astype(np.float64)
    vmax = max([float(c.max()) for c in counts.values() if len(c)] + [0.0]) or 1.0
    left, top, plot_w = 48, 28 if title else 12, 420
    width, height = left + plot_w + 16, top + _CHART_H + 58
    sx = plot_w / (hi - lo)
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title or xlabel)}">'
    ]
    if title:
        parts.append(f'<text x="{left}" y="14" font-weight="600">{esc(title)}</text>')
    base = top + _CHART_H
    for frac in (0, 0.5, 1):
        y = top + _CHART_H * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(vmax * frac)}</text>'
        )
    for x in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{left + (x - lo) * sx:.1f}" y="{base + 14}" text-anchor="middle">{_fmt(x)}</text>')
    if xlabel:
        parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{base + 30}" text-anchor="middle">{esc(xlabel)}</text>')
    for i, (name, c) in enumerate(counts.items()):
        colour = PALETTE[i % len(PALETTE)]
        pts = [f"{left:.1f},{base:.1f}"]
        for j, v in enumerate(c):
            y = base - _CHART_H * v / vmax
            pts += [f"{left + (edges[j] - lo) * sx:.1f},{y:.1f}", f"{left + (edges[j + 1] - lo) * sx:.1f},{y:.1f}"]
        pts.append(f"{left + plot_w:.1f},{base:.1f}")
        dropped = len(clean[name]) - len(finite[name])
        parts.append(
            f'<polygon points="{" ".join(pts)}" fill="{colour}" fill-opacity="0.18" stroke="{colour}" stroke-width="1.5">'
            f"<title>{esc(name)}: {len(finite[name])} values"
            f"{f', {dropped} non-finite dropped' if dropped else ''}</title></polygon>"
        )
    parts.append(_legend(list(counts), left, height - 4))
    parts.append("</svg>")
    return "".join(parts)
