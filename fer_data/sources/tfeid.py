"""TFEID: the Taiwanese Facial Expression Image Database (Brain Mapping Lab, NYMU).

Layout as circulated: class-named folders of ~480x600 colour `.jpg` portraits (faces about
45% of the image width). TFEID's exact file naming is not published in a form we could
check, so this parser assumes the convention that code using the dataset relies on: the
stem split on `_` has the subject as its first token and, as its last token, a code that
starts with `ng ag dg fg hg sg pg` (neutral, anger, disgust, fear, happiness, sadness,
surprise; `LABELS`), e.g. `anger/m01_ag1.jpg`.

Decisions:
* When the file name carries a code (at least two `_` tokens and a known code), it gives the
  label and the subject; otherwise the class folder does (as for any class-folder tree,
  fer_data.sources.folder), so a folder-only export still works and a code-less expression
  (contempt has no code in the table) keeps its folder's label.
* When the file-name code and a known folder name disagree, neither is trusted: the file is
  rejected as `label_conflict` (both are named in the detail), so the conflicts are counted
  in the metrics instead of one source of truth silently winning.
* A folder name that is unknown does not matter for files whose names carry a code (TFEID
  copies sorted into per-subject folders still parse).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.params import Float, param
from fer_data.sources.folder import ClassFolders, FolderParams, Labelled, Place

#: TFEID file-name expression codes (last `_` token of the stem starts with one of these).
LABELS = {
    "ng": labels.NEUTRAL,
    "ag": labels.ANGER,
    "dg": labels.DISGUST,
    "fg": labels.FEAR,
    "hg": labels.HAPPINESS,
    "sg": labels.SADNESS,
    "pg": labels.SURPRISE,
}

CODE = re.compile(r"^(?P<code>" + "|".join(LABELS) + ")", re.IGNORECASE)


def parse_name(stem: str) -> tuple[str, str] | None:
    """(subject, expression code) from a TFEID file stem, or None when it carries no code."""
    tokens = stem.split("_")
    if len(tokens) < 2 or not tokens[0]:
        return None
    m = CODE.match(tokens[-1])
    return (tokens[0], m["code"].lower()) if m else None


class TFEIDParams(FolderParams):
    expected_face_fraction: Float = param(0.45, "a number in (0, 1]", "face width / image side", gt=0, le=1)


class TFEID(ClassFolders):
    name = "tfeid"
    params_model = TFEIDParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"codes": LABELS, "folders": labels.FOLDER_NAMES}

    def name_carries_label(self, place: Place) -> bool:
        return parse_name(place.stem) is not None

    def label_of(self, place: Place) -> Labelled:
        parsed = parse_name(place.stem)
        if parsed is None:
            return super().label_of(place)
        code = parsed[1]
        label = labels.to_canonical(LABELS, code)
        folder = self.table.get(place.class_dir.lower()) if place.class_dir else None
        if folder is not None and folder != label:
            return self.reject(
                place.key,
                "label_conflict",
                f"file name code {code!r} means {label}, but folder {place.class_dir!r} means {folder}",
            )
        return code, label

    def subject_of(self, place: Place) -> str | None:
        parsed = parse_name(place.stem)
        return parsed[0] if parsed else super().subject_of(place)

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """2 subjects x 7 coded expressions as 480x600 colour JPEGs, plus a code-less contempt
        file (folder label) and one file whose code contradicts its folder (label_conflict)."""
        folders = {
            "ng": "neutral",
            "ag": "anger",
            "dg": "disgust",
            "fg": "fear",
            "hg": "happiness",
            "sg": "sadness",
            "pg": "surprise",
        }
        for s, subject in enumerate(("m01", "f02")):
            for e, (code, folder) in enumerate(folders.items()):
                _write_portrait(out_dir / folder / f"{subject}_{code}1.jpg", faces, 30 + s * 7 + e)
        _write_portrait(out_dir / "contempt" / "f02_c1.jpg", faces, 50)
        _write_portrait(out_dir / "happiness" / "m01_sg2.jpg", faces, 51)


def _write_portrait(path: Path, faces: DemoFaces, index: int) -> None:
    """A 480x600 colour portrait (warm-tinted grey: the demo faces are grey photographs)."""
    grey = faces.compose(480, 600, [(index, 240 + faces.rng.uniform(-12, 12), 290 + faces.rng.uniform(-12, 12), 216)])
    rgb = np.clip(grey[..., None] * np.array([1.0, 0.88, 0.78]), 0, 255).astype(np.uint8)
    write_image(path, rgb, quality=90)
