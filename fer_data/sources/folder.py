"""Class folders: any `root/<class>/<image>` tree, optionally with a split level above it.

This is the layout of a team's own web-app exports, of CK+48 and of the Kaggle image-folder
variant of FER2013 (`train/angry/Training_10118481.jpg`). It is also the generic walker that
other folder-shaped datasets (TFEID) subclass, overriding only how a file's label and
subject are read, so folder walking, split detection and file screening live here once.

Layout rules, decided so that every file ends as a sample or a reject, never silently lost:

* Split level: when any top-level folder is named like a split (`split_dirs`, default
  train/training/val/valid/validation/dev/test/testing, case-insensitive), the tree is read as
  `root/<split>/<class>/...`. Other top-level folders in such a tree are not guessed at: their
  files are rejected as `unexpected_folder`. `split_dirs: {}` turns split detection off (for a
  dataset with a class literally called "test").
* Class: the first folder below the root (or below the split folder), looked up
  case-insensitively in `labels.folder_table(class_map)`. Deeper sub-folders (per-subject
  folders inside a class) keep their class folder's label. A folder name that is not in the
  table rejects each of its files as `unknown_label` (the folder is named in the detail and in
  one warning per folder when the dataset is listed). Files with no class folder above them
  (loose in the root or in a split folder) are samples without a label: the engine rejects
  them as `unlabelled` unless `labels.keep_unlabelled` is set (a Kaggle test folder).
* Files: hidden files (`.DS_Store`, macOS `._x.jpg` resource forks) and files that are
  obviously not images (`.txt`, `.csv`, `Thumbs.db`, ...) are skipped and listed in a debug log
  line. Image-suffixed files are samples (a file that does not decode is rejected by the engine
  as `unreadable_image`); any other file is rejected as `not_an_image`, since a `.heic` or a
  suffix-less file may be a photo the user expects to see curated.
* Subject: none, unless `subject_pattern` (a regex searched in the file name) matches; its
  `subject` group, else its first group, else the whole match is the subject id.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.imageio import IMAGE_SUFFIXES
from fer_data.params import Bool, ClassName, Float, Str, param
from fer_data.sources.base import KeyedSource, Reject, Sample, SourceParams

log = logging.getLogger("fer_data.sources.folder")

#: Split folder names recognised by default (lower case) -> the split they stand for.
DEFAULT_SPLIT_DIRS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
SPLITS = frozenset({"train", "val", "test"})

#: File names and suffixes that are certainly not images: skipped (debug-logged), not rejected.
NOT_IMAGE_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db"})
NOT_IMAGE_SUFFIXES = frozenset(
    {
        ".txt",
        ".csv",
        ".tsv",
        ".json",
        ".md",
        ".rst",
        ".xml",
        ".yaml",
        ".yml",
        ".html",
        ".htm",
        ".pdf",
        ".doc",
        ".docx",
        ".xls",
        ".xlsx",
        ".zip",
        ".tar",
        ".gz",
        ".tgz",
        ".7z",
        ".rar",
        ".py",
        ".ipynb",
        ".log",
        ".db",
        ".ini",
        ".mat",
        ".npy",
        ".npz",
        ".pkl",
        ".h5",
        ".pt",
        ".sh",
        ".bat",
    }
)


def obviously_not_image(name: str) -> bool:
    """Hidden files and documents, archives, databases: never meant as samples."""
    lower = name.lower()
    return lower.startswith(".") or lower in NOT_IMAGE_NAMES or PurePosixPath(lower).suffix in NOT_IMAGE_SUFFIXES


@dataclass(frozen=True)
class Place:
    """Where a file sits in the tree: its split folder, class folder and file name."""

    key: str
    split_dir: str | None
    class_dir: str | None

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.key).stem


#: What a label lookup returns: (native label, canonical label or None), or a reject.
Labelled = tuple[str | None, str | None] | Reject


class FolderParams(SourceParams):
    class_map: dict[Str, ClassName] = param(
        {}, "a mapping folder name -> canonical class", "extra or overriding folder names"
    )
    split_dirs: dict[Str, Literal["train", "val", "test"]] = param(
        DEFAULT_SPLIT_DIRS, "a mapping folder name -> train|val|test", "split folder names (lower case)"
    )
    precropped: Bool = param(False, "true or false", "true for tight face crops (CK+48, FER2013 images)")
    expected_face_fraction: Float = param(0.5, "a number in (0, 1]", "face width / image side", gt=0, le=1)
    subject_pattern: Str | None = param(
        None, "null or a regular expression", "searched in the file name; group `subject` (else the match) is the id"
    )

    @field_validator("subject_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"subject_pattern: must be a regular expression ({exc})") from None
        return pattern


class ClassFolders(KeyedSource):
    """`root/[<split>/]<class>/**/<image>` trees; subclasses override `label_of` / `subject_of`."""

    name = "folder"
    params_model = FolderParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"folders": labels.FOLDER_NAMES}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        # Configuration errors fail the run at once, before any file is read.
        self.table = labels.folder_table(self.params.get("class_map") or {})
        self.split_table = self._split_table(self.params.get("split_dirs") or {})
        pattern = self.params.get("subject_pattern")
        self.subject_re = re.compile(pattern) if pattern else None

    def _split_table(self, split_dirs: Mapping[str, str]) -> dict[str, str]:
        return {str(k).lower(): str(v) for k, v in split_dirs.items()}  # values checked by FolderParams

    # --- listing -------------------------------------------------------------------------

    @cached_property
    def split_level(self) -> bool:
        """True when the tree has a split level (any top-level folder is named like a split)."""
        return any(p.is_dir() and p.name.lower() in self.split_table for p in self.root.iterdir())

    def keys(self) -> Iterator[str]:
        files = self._walk()
        self._warn_unknown_folders(files)
        yield from files

    def _walk(self) -> list[str]:
        """Root-relative paths of the candidate files, sorted; obvious non-images skipped."""
        found: list[str] = []
        skipped: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = Path(dirpath).relative_to(self.root)
            skipped += [(rel_dir / d).as_posix() + "/" for d in dirnames if d.startswith(".")]
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in filenames:
                rel = (rel_dir / fname).as_posix()
                (skipped if obviously_not_image(fname) else found).append(rel)
        if skipped:
            log.debug(
                "%s: skipped %d non-image file(s) and hidden folder(s): %s",
                self.name,
                len(skipped),
                ", ".join(sorted(skipped)),
            )
        return sorted(found)

    def _warn_unknown_folders(self, files: list[str]) -> None:
        """One warning per class folder whose files will be rejected as unknown_label."""
        unknown: Counter = Counter()
        for key in files:
            place = self.place(key)
            if (
                isinstance(place, Place)
                and place.class_dir is not None
                and place.class_dir.lower() not in self.table
                and not self.name_carries_label(place)
            ):
                unknown[place.class_dir if place.split_dir is None else f"{place.split_dir}/{place.class_dir}"] += 1
        for folder, n in sorted(unknown.items()):
            log.warning(
                "%s: folder %r is not a known class name: its %d file(s) are rejected as unknown_label "
                "(map it in sources.%s.class_map)",
                self.name,
                folder,
                n,
                self.name,
            )

    def place(self, key: str) -> Place | Reject:
        """Split and class folder of a file (a reject when it sits under an unexpected folder)."""
        parts = PurePosixPath(key).parts
        split_dir = None
        if self.split_level and len(parts) > 1:
            split_dir, parts = parts[0], parts[1:]
            if split_dir.lower() not in self.split_table:
                return self.reject(
                    key,
                    "unexpected_folder",
                    f"top-level folder {split_dir!r} is not a split folder, but "
                    f"{self.root.name} has split folders (split_dirs: {', '.join(sorted(self.split_table))})",
                )
        class_dir = parts[0] if len(parts) > 1 else None
        return Place(key, split_dir, class_dir)

    # --- one file ------------------------------------------------------------------------

    def items(self, key: str) -> Iterator[Sample | Reject]:
        place = self.place(key)
        if isinstance(place, Reject):
            yield place
            return
        if PurePosixPath(key).suffix.lower() not in IMAGE_SUFFIXES:
            yield self.reject(
                key,
                "not_an_image",
                f"{PurePosixPath(key).suffix or 'no suffix'} is not an image type "
                f"({', '.join(sorted(IMAGE_SUFFIXES))})",
            )
            return
        labelled = self.label_of(place)
        if isinstance(labelled, Reject):
            yield labelled
            return
        native, label = labelled
        split = self.split_table.get(place.split_dir.lower()) if place.split_dir else None
        yield Sample(
            source=self.name,
            locator=key,
            label_native=native,
            label=label,
            split=split,
            split_original=place.split_dir,
            subject_id=self.subject_of(place),
            path=str(self.root / key),
            precropped=bool(self.params["precropped"]),
            expected_face_fraction=float(self.params["expected_face_fraction"]),
        )

    def label_of(self, place: Place) -> Labelled:
        """The label the class folder gives (None, None when the file has no class folder)."""
        if place.class_dir is None:
            return None, None
        label = self.table.get(place.class_dir.lower())
        if label is None:
            return self.reject(
                place.key,
                "unknown_label",
                f"folder {place.class_dir!r} is not a known class name (add it to sources.{self.name}.class_map)",
            )
        return place.class_dir, label

    def name_carries_label(self, place: Place) -> bool:
        """Whether the file name alone gives a label (so an unknown folder name does not matter)."""
        return False

    def subject_of(self, place: Place) -> str | None:
        """Subject id from `subject_pattern` searched in the file name (None when unset or no match)."""
        if self.subject_re is None:
            return None
        m = self.subject_re.search(place.name)
        if not m:
            return None
        if "subject" in m.groupdict():
            return m["subject"]
        return m.group(1) if m.re.groups else m.group(0)

    # --- demo ----------------------------------------------------------------------------

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """A train/test tree of web-app style portraits (PNG and JPEG), with the usual clutter.

        Besides 7 class folders a split, it has a `Thumbs.db`, a notes file, a hidden file
        (skipped), a folder name no table knows (`confused`, rejected), a loose image with no
        class folder (unlabelled) and a `.jpg` that is not an image (unreadable).
        """
        classes = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
        i = 0
        for split, per_class in (("train", 2), ("test", 1)):
            for name in classes:
                for k in range(per_class):
                    subject = f"S{(i % 4) + 1:03d}"
                    suffix = ".jpg" if k else ".png"
                    write_image(
                        out_dir / split / name / f"{subject}_{name}_{i:04d}{suffix}", faces.portrait(i, 160 + 40 * k)
                    )
                    i += 1
        write_image(out_dir / "train" / "confused" / "S001_confused_0100.png", faces.portrait(7, 160))
        write_image(out_dir / "test" / "S002_loose_0101.png", faces.portrait(8, 160))
        (out_dir / "train" / "happy" / "S003_broken_0102.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        (out_dir / "train" / "happy" / "Thumbs.db").write_bytes(b"\x00" * 64)
        (out_dir / "train" / "notes.txt").write_text("exported from the labelling web app\n")
        (out_dir / "train" / "sad" / "._S001_sad_0000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
