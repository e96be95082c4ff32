"""FER2013 (ICML 2013 representation-learning challenge), in each of the forms it circulates in.

CSV layout (`layout: csv`), files in the dataset root:

* `fer2013.csv`: `emotion,pixels,Usage`, 35,887 rows; `pixels` holds 2,304 space-separated grey
  levels (48x48); `Usage` is Training / PublicTest / PrivateTest (28,709 / 3,589 / 3,589 rows),
  read as split train / val / test, the original kept in `split_original`.
* `icml_face_data.csv`: the same rows, header `emotion, Usage, pixels` (note the spaces):
  columns are found by their stripped, case-folded names, never by position.
* Kaggle's `train.csv` (`emotion,pixels`: split train) and `test.csv` (`pixels` only: no labels,
  so label None, split test; the engine rejects them as `unlabelled` unless
  `labels.keep_unlabelled`). Without a Usage column, `split_original` is the file's stem.

When several are present, one source of rows is read, never two copies of the same faces:
`fer2013.csv`, else `icml_face_data.csv`, else `train.csv` + `test.csv` (the order torchvision
uses). `csv_files: [a.csv, b.csv]` names the files explicitly instead.

Labels: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral (`LABELS`).
Every image is a 48x48 face crop (`precropped`), so no detector runs. A row's locator is
`<file>:<line>` with the header as line 1 (`fer2013.csv:637`); `raw_sha256` is the sha256 of the
pixel field as written. Bad rows become rejects with their line: `truncated_row` (wrong number
of fields), `wrong_pixel_count`, `non_numeric_pixel`, `pixel_out_of_range`, `unknown_label`
(not an integer 0..6, or empty), `unknown_split` (a Usage value other than the three), and
`unrecognised_header` (a file without a `pixels` column; reported once, on line 1).

Image-folder layout (`layout: folders`): Kaggle's `train/<class>/*.jpg` + `test/<class>/*.jpg`
with class folders angry, disgust, fear, happy, neutral, sad, surprise
(`FOLDER_LABELS`; other folder names are rejected as `unknown_label` unless mapped in
`class_map`). The split is the folder's; file names like `Training_123.jpg` / `PublicTest_…` /
`PrivateTest_…` keep the image's origin, which becomes `split_original`.

`layout: auto` (default) reads the CSV layout when one of the known CSV files is in the root,
else the folders: `train/` or `test/` in the root, else in `root/<images_subdir>` (default
`images`). The demo tree (`write_demo`) uses exactly that: `fer2013.csv` in its root and the
folder variant under `images/`, so the default reads the CSV and `layout: folders` the images.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import numpy as np

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.params import Bool, ClassName, Str, param
from fer_data.sources.base import Reject, Sample, Source, SourceParams
from fer_data.sources.fer2013_csv import PixelCsv, PixelRow
from fer_data.sources.folder import ClassFolders, FolderParams
from fer_data.sources.parsing import items_per_shard

LABELS = {
    0: labels.ANGER,
    1: labels.DISGUST,
    2: labels.FEAR,
    3: labels.HAPPINESS,
    4: labels.SADNESS,
    5: labels.SURPRISE,
    6: labels.NEUTRAL,
}

#: Folder names of the Kaggle image-folder variant of FER2013 (and of CK+48-style trees).
FOLDER_LABELS = {
    "angry": labels.ANGER,
    "disgust": labels.DISGUST,
    "fear": labels.FEAR,
    "happy": labels.HAPPINESS,
    "sad": labels.SADNESS,
    "surprise": labels.SURPRISE,
    "neutral": labels.NEUTRAL,
}

log = logging.getLogger("fer_data.sources.fer2013")

NAME = "fer2013"
#: Usage column -> split.
USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
#: Which CSV files hold the rows, in order of preference (each entry is one complete set).
CSV_CHOICES: tuple[tuple[str, ...], ...] = (("fer2013.csv",), ("icml_face_data.csv",), ("train.csv", "test.csv"))
#: Split of the Kaggle files that have no Usage column.
FILE_SPLITS = {"train": "train", "test": "test"}
ORIGIN = re.compile(r"^(Training|PublicTest|PrivateTest)_")


def csv_files(root: Path, explicit: object = "auto") -> list[str]:
    """The CSV files to read (root-relative), by the preference order of CSV_CHOICES."""
    if explicit not in (None, "auto"):
        files = [explicit] if isinstance(explicit, str) else list(explicit)  # type: ignore[arg-type]
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{NAME}: csv_files {missing} not found in {root}")
        return files
    for choice in CSV_CHOICES:
        present = [f for f in choice if (root / f).is_file()]
        if present:
            ignored = sorted({f for c in CSV_CHOICES for f in c if (root / f).is_file()} - set(present))
            if ignored:
                log.info(
                    "%s: reading %s; ignoring %s (the same faces again)", NAME, ", ".join(present), ", ".join(ignored)
                )
            return present
    return []


class FER2013Csv(Source):
    """The CSV layout: records of one or more pixel CSVs, sharded by byte ranges."""

    name = NAME

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None, files: list[str] | None = None):
        super().__init__(root, params)
        self.files = files if files is not None else csv_files(self.root, self.params.get("csv_files", "auto"))
        if not self.files:
            raise FileNotFoundError(
                f"{NAME}: no FER2013 CSV ({', '.join(f for c in CSV_CHOICES for f in c)}) in {self.root}"
            )
        self.csvs = {f: PixelCsv(self.root / f) for f in self.files}

    def __iter__(self) -> Iterator[Sample | Reject]:
        for f in self.files:
            yield from self.iter_shard(self._whole(f))

    def _whole(self, f: str) -> dict[str, Any]:
        return {"file": f, "start": self.csvs[f].header.data_start, "end": None, "first_line": 2}

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        """Byte ranges cut at line starts (one planning pass over each file)."""
        usable = [f for f in self.files if self.csvs[f].usable]
        index = {f: self.csvs[f].record_index() for f in usable}
        size = items_per_shard(sum(len(i) for i in index.values()), max_items, min_shards)
        plan: list[dict[str, Any]] = []
        for f in self.files:
            if f not in index or not len(index[f]):
                plan.append(self._whole(f))  # reports its header problem, or reads nothing
                continue
            idx = index[f]
            for k in range(0, len(idx), size):
                start, line = idx.position(k)
                end = idx.position(k + size)[0] if k + size < len(idx) else None
                plan.append({"file": f, "start": start, "end": end, "first_line": line})
        return plan

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        f = shard["file"]
        csv = self.csvs[f]
        if not csv.usable:
            yield self.reject(
                f"{f}:1",
                "unrecognised_header",
                f"no 'pixels' column in header {list(csv.header.names)}: the file is not read",
            )
            return
        has_usage, stem = csv.header.index("usage") is not None, PurePosixPath(f).stem
        for row in csv.rows(shard["start"], shard["first_line"], shard["end"]):
            yield self.item(f, stem, row, has_usage)

    def item(self, f: str, stem: str, row: PixelRow, has_usage: bool) -> Sample | Reject:
        """One record as a sample, or the reject that says what is wrong with it."""
        locator = f"{f}:{row.line}"
        if row.error is not None:
            return self.reject(locator, *row.error)
        try:
            native, label = fer2013_label(row.values)
        except labels.UnknownLabel as exc:
            return self.reject(locator, "unknown_label", str(exc))
        try:
            split, split_original = split_of(row.values, stem, has_usage)
        except UnknownSplit as exc:
            return self.reject(locator, "unknown_split", str(exc))
        return Sample(
            source=self.name,
            locator=locator,
            label_native=native,
            label=label,
            split=split,
            split_original=split_original,
            pixels=row.pixels,
            raw_sha256=row.raw_sha256,
            precropped=True,
        )


class UnknownSplit(ValueError):
    """A Usage value that is not one of FER2013's three."""


def fer2013_label(values: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(native, canonical) from the `emotion` column; (None, None) for files without one."""
    if "emotion" not in values:
        return None, None
    native = values["emotion"]
    if not native:
        raise labels.UnknownLabel("empty emotion field")
    if not native.isdigit():
        raise labels.UnknownLabel(f"emotion {native!r} is not an integer 0..6")
    try:
        return native, labels.to_canonical(LABELS, int(native))
    except labels.UnknownLabel:
        raise labels.UnknownLabel(f"emotion {native} is not one of FER2013's codes 0..6") from None


def split_of(values: Mapping[str, str], stem: str, has_usage: bool) -> tuple[str | None, str]:
    """(split, split_original) from Usage, or from the file name (Kaggle train.csv / test.csv)."""
    if not has_usage:
        return FILE_SPLITS.get(stem.lower()), stem
    usage = values.get("usage", "")
    if usage not in USAGE_SPLITS:
        raise UnknownSplit(f"Usage {usage!r} is not one of {', '.join(USAGE_SPLITS)}")
    return USAGE_SPLITS[usage], usage


class FER2013FoldersParams(FolderParams):
    precropped: Bool = param(True, "true or false", "FER2013's images are 48x48 face crops")


class FER2013Folders(ClassFolders):
    """Kaggle's image-folder variant: `train|test/<class>/<Origin>_<n>.jpg`, 48x48 crops."""

    name = NAME
    params_model = FER2013FoldersParams

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        # FER2013's own seven folder names only: a stray folder is an error to see, not a guess.
        class_map = self.params.get("class_map") or {}
        mapped = labels.folder_table(class_map)  # validates the names it maps to
        self.table = {k.lower(): v for k, v in FOLDER_LABELS.items()}
        self.table.update({str(k).lower(): mapped[str(k).lower()] for k in class_map})

    def items(self, key: str) -> Iterator[Sample | Reject]:
        origin = ORIGIN.match(PurePosixPath(key).name)
        for item in super().items(key):
            yield replace(item, split_original=origin[1]) if isinstance(item, Sample) and origin else item


class FER2013Params(SourceParams):
    layout: Literal["auto", "csv", "folders"] = param(
        "auto", "auto, csv or folders", "csv when a FER2013 CSV is in the root (auto), else the image folders"
    )
    csv_files: Literal["auto"] | list[Str] = param(
        "auto",
        "auto or a list of root-relative CSV files",
        "auto: fer2013.csv, else icml_face_data.csv, else train+test",
    )
    images_subdir: Str = param("images", "a folder", "folders layout: train/ + test/ in the root, else below this")
    class_map: dict[Str, ClassName] = param(
        {}, "a mapping folder name -> canonical class", "folders layout: extra names"
    )


class FER2013(Source):
    """`--source fer2013`: picks the layout (see the module docstring) and reads it."""

    name = NAME
    params_model = FER2013Params
    label_tables: ClassVar[Mapping[str, Mapping]] = {"codes": LABELS, "folders": FOLDER_LABELS}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        self.layout, self.impl = self._open(self.params["layout"])

    def _open(self, layout: str) -> tuple[str, Source]:
        files = csv_files(self.root, self.params.get("csv_files", "auto"))
        if layout == "csv" or (layout == "auto" and files):
            return "csv", FER2013Csv(self.root, self.params, files)
        folder_root = self._folder_root(strict=layout == "auto")
        if folder_root is None:
            raise FileNotFoundError(
                f"{NAME}: {self.root} holds neither a FER2013 CSV nor train/ or test/ image folders "
                f"(also looked in {self.params['images_subdir']}/)"
            )
        return "folders", FER2013Folders(folder_root, self.params)

    def _folder_root(self, strict: bool) -> Path | None:
        """The root itself when it has train/ or test/, else root/<images_subdir> when that has them."""
        sub = self.params.get("images_subdir")
        for cand in (self.root, self.root / sub if sub else None):
            if cand is not None and any((cand / d).is_dir() for d in ("train", "test")):
                return cand
        if strict:
            return None
        return self.root / sub if sub and (self.root / sub).is_dir() else self.root

    def __iter__(self) -> Iterator[Sample | Reject]:
        return iter(self.impl)

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        return self.impl.shards(max_items, min_shards)

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        return self.impl.iter_shard(shard)

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """`fer2013.csv` (126 rows + 2 broken ones) and the image-folder variant under `images/`.

        Rows cycle through the 7 labels and use FER2013's Usage proportions (8:1:1). Two rows
        are broken the way real downloads break: one lost a pixel value, one has label 7.
        """
        write_fer2013_csv(out_dir / "fer2013.csv", faces, 126)
        folders = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
        i = 0
        for split, prefixes in (("train", ("Training", "Training")), ("test", ("PublicTest", "PrivateTest"))):
            for name in folders:
                for prefix in prefixes:
                    write_image(
                        out_dir / "images" / split / name / f"{prefix}_{1000 + i}.jpg",
                        faces.face(i + 200, 48),
                        quality=95,
                    )
                    i += 1


def demo_usage(i: int, n: int) -> str:
    """FER2013's proportions: the first 80% Training, then PublicTest, then PrivateTest."""
    return "Training" if i < 0.8 * n else "PublicTest" if i < 0.9 * n else "PrivateTest"


def pixel_text(grey: np.ndarray) -> str:
    return " ".join(map(str, grey.ravel().tolist()))


def write_fer2013_csv(path: Path, faces: DemoFaces, n: int, broken: bool = True) -> None:
    """A fer2013.csv of n demo faces (labels cycle 0..6), optionally with two broken rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        fh.write("emotion,pixels,Usage\n")
        for i in range(n):
            fh.write(f"{i % 7},{pixel_text(faces.face(i, 48))},{demo_usage(i, n)}\n")
        if broken:
            short = pixel_text(faces.face(n, 48)).rsplit(" ", 1)[0]
            fh.write(f"3,{short},Training\n")  # 2,303 values
            fh.write(f"7,{pixel_text(faces.face(n + 1, 48))},Training\n")  # no such label
