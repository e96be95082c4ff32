"""AffectNet (manually annotated part), as distributed.

Layout:

    Manually_Annotated_file_lists/training.csv     ~414k rows (the lists may also sit at the root)
    Manually_Annotated_file_lists/validation.csv   5,500 rows
    Manually_Annotated_Images/<subDirectory_filePath>   e.g. 689/737db2...ca.jpg

CSV header: subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,
expression,valence,arousal. The face box is AffectNet's own detection and is used as is
(`Sample.face_box` = x, y, x+w-1, y+h-1): no detector runs. `facial_landmarks` holds 136
`;`-separated numbers (68 x/y pairs) that become `provided_landmarks`, so the curated table
measures how well our fit agrees with AffectNet's. Expression codes (`LABELS`):
0 neutral .. 7 contempt, and 8 none / 9 uncertain / 10 no-face, which are rejected as
`not_an_emotion` with their meaning in the detail. Valence and arousal (-1..1; -2 means
not applicable) go to the `valence` / `arousal` columns, -2 as null. Splits: training.csv
-> train, validation.csv -> val (AffectNet's test set is not public).

The training list is large (hundreds of MB: every row carries 136 landmark numbers), so it
is streamed: planning records the byte offset of every shard's first row in one pass, and
each worker seeks there and parses its rows with the csv module. Locators are
`LIST:LINE` (the header is line 1). Bad rows become rejects: `malformed_row` (wrong field
count, empty path), `bad_number` (a box, code, valence or arousal that is not a number or
out of range), `bad_face_box` (zero or negative size), `unknown_label`, `missing_image`. A
list whose header lacks a column is one `bad_header` reject; a list that is absent is one
`missing_label_file` reject. A broken landmark field costs the landmarks, not the row (a
warning is logged).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from fer_data import labels
from fer_data.demo import DemoFaces, placed_landmarks, write_image
from fer_data.params import Str, param
from fer_data.sources.base import Reject, Sample, Source, SourceParams, relative_locator

LABELS = {
    0: labels.NEUTRAL,
    1: labels.HAPPINESS,
    2: labels.SADNESS,
    3: labels.SURPRISE,
    4: labels.FEAR,
    5: labels.DISGUST,
    6: labels.ANGER,
    7: labels.CONTEMPT,
    8: labels.NOT_AN_EMOTION,
    9: labels.NOT_AN_EMOTION,
    10: labels.NOT_AN_EMOTION,
}

log = logging.getLogger(__name__)

COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
BOX_COLUMNS = ("face_x", "face_y", "face_width", "face_height")
#: What AffectNet's non-emotion codes mean, for reject details (their label is NOT_AN_EMOTION).
NON_EMOTION_MEANING = {
    8: "none: the face shows none of the eight expressions",
    9: "uncertain: the annotator could not tell the expression",
    10: "no-face: the annotator found no face in the image",
}
NOT_APPLICABLE = -2.0
LIST_DIRS = ("", "Manually_Annotated_file_lists")


class BadField(ValueError):
    """A CSV field that does not hold what its column promises."""


class AffectNetParams(SourceParams):
    lists: dict[Str, Literal["train", "val", "test"]] = param(
        {"training.csv": "train", "validation.csv": "val"}, "a mapping list file -> train|val|test", "the label lists"
    )
    lists_dir: Str | None = param(None, "null or a folder", "where the lists are (null: the root, then LIST_DIRS)")
    images_dir: Str = param("Manually_Annotated_Images", "a folder", "the lists' subDirectory_filePath is below it")


class AffectNet(Source):
    name = "affectnet"
    params_model = AffectNetParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"codes": LABELS}

    def _list_path(self, name: str) -> Path | None:
        dirs = (self.params["lists_dir"],) if self.params.get("lists_dir") else LIST_DIRS
        for folder in dirs:
            path = self.root / folder / name
            if path.is_file():
                return path
        return None

    # --- shards: byte ranges of the lists ----------------------------------------------------

    def _lists(self) -> Iterator[tuple[str, str, Path | None, list[str] | str]]:
        """(locator, split, path, header columns or the problem with it) per configured list.

        The locator is the list's root-relative path, or its bare name when it is absent."""
        for name, split in self.params["lists"].items():
            path = self._list_path(name)
            if path is None:
                yield name, split, None, "absent"
            else:
                yield relative_locator(self.root, path), split, path, read_header(path)

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        found, out = [], []
        for locator, split, path, header in self._lists():
            if isinstance(header, str):
                out.append({"list": locator, "problem": header})
            else:
                found.append((locator, split, row_offsets(path)))
        total = sum(len(offsets) for _, _, offsets in found)
        size = max(1, min(max_items, -(-total // max(1, min_shards))))
        for locator, split, offsets in found:
            for i in range(0, len(offsets), size):
                out.append(
                    {
                        "list": locator,
                        "split": split,
                        "offset": offsets[i],
                        "line": i + 2,
                        "count": min(size, len(offsets) - i),
                    }
                )
        return out or [{}]

    def __iter__(self) -> Iterator[Sample | Reject]:
        for locator, split, _, header in self._lists():
            if isinstance(header, str):
                yield self._list_reject(locator, header)
            else:
                yield from self._rows(locator, split, None, 2, None)

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        if "problem" in shard:
            yield self._list_reject(shard["list"], shard["problem"])
        elif shard:
            yield from self._rows(shard["list"], shard["split"], shard["offset"], shard["line"], shard["count"])

    def _list_reject(self, name: str, problem: str) -> Reject:
        if problem == "absent":
            where = " or ".join(str(Path(d) / name) for d in LIST_DIRS)
            return self.reject(name, "missing_label_file", f"no {where} under the dataset root")
        return self.reject(f"{name}:1", "bad_header", problem)

    def _rows(
        self, list_loc: str, split: str, offset: int | None, line: int, count: int | None
    ) -> Iterator[Sample | Reject]:
        """Rows of one list from byte `offset` (None: after the header), numbered from `line`."""
        path = self.root / list_loc
        header = read_header(path)
        with open(path, "rb") as fh:
            if offset is None:
                fh.readline()
            else:
                fh.seek(offset)
            number = line
            while count is None or number < line + count:
                raw = fh.readline()
                if not raw:
                    break
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if text.strip():
                    yield self._row(f"{list_loc}:{number}", Path(list_loc).stem, split, header, text)
                number += 1

    # --- one row -------------------------------------------------------------------------------

    def _row(self, locator: str, list_name: str, split: str, header: list[str], text: str) -> Sample | Reject:
        try:
            fields = next(csv.reader([text]))
        except csv.Error as exc:
            return self.reject(locator, "malformed_row", f"not a CSV row: {exc}")
        if len(fields) != len(header):
            return self.reject(locator, "malformed_row", f"expected {len(header)} fields, found {len(fields)}")
        rec = dict(zip(header, fields))
        rel = rec["subDirectory_filePath"].strip()
        if not rel:
            return self.reject(locator, "malformed_row", "empty subDirectory_filePath")
        try:
            x, y, w, h = (whole_number(rec, c) for c in BOX_COLUMNS)
            code = whole_number(rec, "expression")
            valence, arousal = affect(rec, "valence"), affect(rec, "arousal")
        except BadField as exc:
            return self.reject(locator, "bad_number", str(exc))
        if w <= 0 or h <= 0:
            return self.reject(locator, "bad_face_box", f"face box {w}x{h} at ({x}, {y}) has no area")
        try:
            label = labels.to_canonical(LABELS, code)
        except labels.UnknownLabel as exc:
            return self.reject(locator, "unknown_label", f"{exc} (AffectNet codes are 0-10)")
        if label == labels.NOT_AN_EMOTION:
            return self.reject(locator, "not_an_emotion", f"expression {code} = {NON_EMOTION_MEANING[code]}")
        image = Path(self.params["images_dir"]) / rel
        if not (self.root / image).is_file():
            return self.reject(locator, "missing_image", f"{image.as_posix()} is named by the list but not found")
        return Sample(
            source=self.name,
            locator=locator,
            label_native=str(code),
            label=label,
            split=split,
            split_original=list_name,
            path=str(self.root / image),
            face_box=(x, y, x + w - 1, y + h - 1),
            provided_landmarks=self._landmarks(locator, rec["facial_landmarks"]),
            extra={"valence": valence, "arousal": arousal},
        )

    def _landmarks(self, locator: str, field: str) -> np.ndarray | None:
        try:
            return parse_landmarks(field)
        except BadField as exc:
            log.warning("affectnet: %s: %s; the row is kept without provided landmarks", locator, exc)
            return None

    # --- demo tree ----------------------------------------------------------------------------

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """20 rows in the distributed layout: 14 training (every code 0-10), 6 validation;
        photos of varied size with the face box and landmarks filled in as AffectNet does."""
        codes = {"training": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 0, 3], "validation": [0, 1, 2, 5, 6, 7]}
        rng = np.random.default_rng(7)
        index = 0
        for list_name, list_codes in codes.items():
            rows = [",".join(COLUMNS)]
            for code in list_codes:
                rows.append(_demo_row(out_dir, faces, index, code, rng))
                index += 1
            path = out_dir / "Manually_Annotated_file_lists" / f"{list_name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(rows) + "\n")


def _demo_row(out_dir: Path, faces: DemoFaces, index: int, code: int, rng: np.random.Generator) -> str:
    """Write one demo photo and return its CSV row (box a little off the fit's box, like a real detector's)."""
    width, height = int(rng.integers(220, 400)), int(rng.integers(220, 400))
    px = int(min(width, height) * rng.uniform(0.45, 0.6))
    cx, cy = width * rng.uniform(0.42, 0.58), height * rng.uniform(0.42, 0.58)
    photo = faces.compose(width, height, [(40 + index, cx, cy, px)])
    rel = f"{1 + index % 3}/{hashlib.sha1(str(index).encode()).hexdigest()[:24]}.jpg"
    write_image(out_dir / "Manually_Annotated_Images" / rel, photo, quality=92)
    side = int(0.84 * px)
    x, y = int(cx - side / 2), int(cy - side / 2 + 0.03 * px)
    points = ";".join(f"{v:.2f}" for v in placed_landmarks(photo, cx, cy, px).ravel())
    if code >= 8:
        valence = arousal = NOT_APPLICABLE
    else:
        valence, arousal = rng.uniform(-1, 1, 2).round(6)
    return f"{rel},{x},{y},{side},{side},{points},{code},{valence},{arousal}"


def read_header(path: Path) -> list[str] | str:
    """The list's column names, or what is wrong with its header."""
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8-sig", errors="replace").strip()
    if not first:
        return "empty file: expected a header line"
    header = [c.strip() for c in next(csv.reader([first]))]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return f"header lacks {', '.join(missing)} (found {first[:120]!r})"
    return header


def row_offsets(path: Path) -> array:
    """Byte offset of every line after the header (one streaming pass; 8 bytes a row)."""
    offsets = array("q")
    with open(path, "rb") as fh:
        pos = len(fh.readline())
        for raw in fh:
            offsets.append(pos)
            pos += len(raw)
    return offsets


def whole_number(rec: Mapping[str, str], column: str) -> int:
    text = rec[column].strip()
    try:
        value = float(text)
    except ValueError:
        raise BadField(f"{column} {text[:40]!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise BadField(f"{column} {text[:40]!r} is not a whole number")
    return int(value)


def affect(rec: Mapping[str, str], column: str) -> float | None:
    """Valence / arousal in -1..1, None for AffectNet's 'not applicable' (-2)."""
    text = rec[column].strip()
    try:
        value = float(text)
    except ValueError:
        raise BadField(f"{column} {text[:40]!r} is not a number") from None
    if value == NOT_APPLICABLE:
        return None
    if not -1.0 <= value <= 1.0:
        raise BadField(f"{column} {text[:40]!r} is outside -1..1 (and is not -2, 'not applicable')")
    return value


def parse_landmarks(field: str) -> np.ndarray:
    """(68, 2) points from the `;`-separated facial_landmarks field."""
    parts = [p for p in field.strip().strip(";").split(";")]
    if len(parts) != 136:
        raise BadField(f"facial_landmarks holds {len(parts)} values, expected 136")
    try:
        points = np.array([float(p) for p in parts], dtype=np.float64).reshape(68, 2)
    except ValueError:
        raise BadField("facial_landmarks holds something that is not a number") from None
    if not np.isfinite(points).all():
        raise BadField("facial_landmarks holds non-finite values")
    return points
