"""Stewards' label-review decisions applied to the corpus (README.md, "Label review").

`data/review/decisions.csv` (params `review.decisions`; a DVC dependency of the corpus stage)
holds one decision a line: sample_id, action (relabel | drop | keep), new_label (for relabel),
who, why. On the next build a relabelled row carries the new label (its `label_native` keeps the
dataset's) with `label_source = review`; a dropped row stays in groups.parquet, not kept, with
`drop_reason = review`; keep records that a steward confirmed the given label. A decision that
cannot be applied (unknown sample id, a label outside the target set, a bad action, a second
decision for the same row) is logged and listed in the manifest's `review` entry, never silently
skipped; a file that is not a decisions file (wrong header) stops the build before any work.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("fer_data.corpus")

COLUMNS = ("sample_id", "action", "new_label", "who", "why")
ACTIONS = ("relabel", "drop", "keep")
DROP_REASON = "review"
LABEL_SOURCE = "review"
#: Problems listed in the manifest at most (all are logged); a file of thousands of stale ids stays readable.
MAX_LISTED = 50


class DecisionsError(ValueError):
    """The decisions file cannot be read as one (one line, naming the file)."""


def path_of(raw: Mapping[str, Any] | None) -> Path | None:
    """The decisions file params name (`review.decisions`), or None."""
    from fer_data.review.params import resolve

    name = resolve(raw).decisions
    return Path(name) if name else None


def check(raw: Mapping[str, Any] | None) -> None:
    """Before any work: the `review` block is valid and the decisions file, when there is one, has the header."""
    path = path_of(raw)
    if path is not None and path.exists():
        _header(path)


def _header(path: Path) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        header = [h.strip() for h in next(csv.reader(f), [])]
    if header[: len(COLUMNS)] != list(COLUMNS):
        raise DecisionsError(f"{path}: header must start with {','.join(COLUMNS)} (got {','.join(header)})")


def write_empty(path: str | Path) -> bool:
    """Create PATH with the header only when it does not exist (never overwrites decisions); True when created."""
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerow(COLUMNS)
    tmp.replace(path)
    return True


def read(path: str | Path, classes: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(usable decisions, problems) of a decisions file; one decision per sample_id (a repeat is a problem)."""
    path = Path(path)
    _header(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
        rows = [({(k or "").strip(): (v or "").strip() for k, v in r.items()}, reader.line_num) for r in reader]
    usable, problems, seen = [], [], {}
    for r, line in rows:
        sid, action, new = r["sample_id"], r["action"].lower(), r["new_label"]
        where = {"line": line, "sample_id": sid, "action": action}
        if not sid and not action:
            continue  # a blank line
        if action not in ACTIONS:
            problems.append({**where, "problem": f"action must be one of {', '.join(ACTIONS)}"})
        elif action == "relabel" and new not in classes:
            problems.append({**where, "problem": f"new_label {new!r} is not in the target set ({', '.join(classes)})"})
        elif sid in seen:
            problems.append({**where, "problem": f"a second decision for this sample (line {seen[sid]} applies)"})
        else:
            seen[sid] = line
            usable.append({**r, "action": action, "line": line})
    return usable, problems


def apply(frame: pd.DataFrame, raw: Mapping[str, Any] | None, classes: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """FRAME (every input row, as the build decided it) with the decisions applied; and the manifest's summary."""
    frame = frame.assign(label_source="dataset")
    path = path_of(raw)
    if path is None:
        return frame, {"decisions": None}
    summary: dict[str, Any] = {"decisions": str(path), "applied": {a: 0 for a in ACTIONS}, "problems": []}
    if not path.exists():
        log.warning("review: %s does not exist: no decisions applied", path)
        summary["problems"].append({"line": 0, "problem": "file not found"})
        return frame, summary
    summary["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    decisions, problems = read(path, classes)
    at = pd.Series(np.arange(len(frame)), index=frame["sample_id"].to_numpy())
    label = frame["label"].to_numpy(dtype=object).copy()
    source = frame["label_source"].to_numpy(dtype=object).copy()
    kept = frame["kept"].to_numpy(bool).copy()
    reason = frame["drop_reason"].to_numpy(dtype=object).copy()
    for d in decisions:
        i = at.get(d["sample_id"])
        if i is None:
            problems.append({"line": d["line"], "sample_id": d["sample_id"], "action": d["action"],
                             "problem": "unknown sample_id (not in any curated table of this corpus)"})  # fmt: skip
            continue
        if not kept[i] and d["action"] != "keep":
            problems.append({"line": d["line"], "sample_id": d["sample_id"], "action": d["action"],
                             "problem": f"the row is not published ({reason[i]}): the shards do not change"})  # fmt: skip
        if d["action"] == "relabel":
            label[i], source[i] = d["new_label"], LABEL_SOURCE
        elif d["action"] == "drop" and kept[i]:
            kept[i], reason[i] = False, DROP_REASON
        summary["applied"][d["action"]] += 1
    for p in problems:
        log.warning("review: %s line %s: %s %s: %s", path, p["line"], p.get("action"), p.get("sample_id"), p["problem"])
    summary["problems"] = sorted(problems, key=lambda p: p["line"])[:MAX_LISTED]
    summary["problem_count"] = len(problems)
    return frame.assign(label=label, label_source=source, kept=kept, drop_reason=reason), summary
