"""RAF-DB basic (Real-world Affective Faces, single-label part), as distributed.

Layout:

    EmoLabel/list_patition_label.txt     "train_00001.jpg 5" per line (the misspelling is official)
    Image/aligned/train_00001_aligned.jpg  100x100 faces, already aligned by the authors
    Image/original/train_00001.jpg         the full web photos

Codes 1 surprise .. 7 neutral (`LABELS`). The split is the file-name prefix (train /
test; RAF-DB has no validation split). 12,271 train and 3,068 test images.

`image_set` picks the images. `aligned` (default): the 100x100 crops are used whole as the
face box (`precropped`): they are tight, centred faces, and running a detector on them
would only lose the hard ones (profile, occluded) that RAF-DB is valued for; landmarks are
still fitted and the face re-aligned to the project's eye positions, and a crop whose fit
fails is kept unaligned or rejected per `faces.precropped_fallback`. `original`: the full
photos go through detection (`expected_face_fraction`, default 0.4).

Every line of the label file is one item: a line that does not parse is rejected as
`bad_label_line` (locator `EmoLabel/list_patition_label.txt:LINE`), a code outside 1-7 as
`unknown_label`, an image the line names but the tree lacks as `missing_image` (locator:
the image path it should have). A missing label file is one `missing_label_file` reject.
Shards are line ranges of the label file (small: 15,339 lines), re-read by each worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.params import Float, Str, param
from fer_data.sources.base import Reject, Sample, Source, SourceParams

LABELS = {
    1: labels.SURPRISE,
    2: labels.FEAR,
    3: labels.DISGUST,
    4: labels.HAPPINESS,
    5: labels.SADNESS,
    6: labels.ANGER,
    7: labels.NEUTRAL,
}

IMAGE_NAME = re.compile(r"^[\w.-]+\.(jpe?g|png|bmp)$", re.IGNORECASE)
SPLITS = {"train": "train", "test": "test"}
IMAGE_SETS = {"aligned": ("Image/aligned", 0.8), "original": ("Image/original", 0.4)}


@dataclass(frozen=True)
class LabelLine:
    """One parsed line of the label file."""

    line: int
    name: str
    code: int

    @property
    def split_original(self) -> str | None:
        prefix = self.name.split("_", 1)[0].lower()
        return prefix if prefix in SPLITS else None


class RAFDBParams(SourceParams):
    image_set: Literal["aligned", "original"] = param(
        "aligned", "aligned or original", "Image/aligned (100x100 crops, used whole) or Image/original (detected)"
    )
    label_file: Str = param("EmoLabel/list_patition_label.txt", "a root-relative file", "the label list")
    images_dir: Str | None = param(None, "null or a folder", "the images (null: Image/aligned or Image/original)")
    expected_face_fraction: Float | None = param(
        None, "null or a number in (0, 1]", "face width / image side (null: 0.8 aligned, 0.4 original)", gt=0, le=1
    )


class RAFDB(Source):
    name = "rafdb"
    params_model = RAFDBParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"codes": LABELS}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        image_set = self.params["image_set"]
        folder, fraction = IMAGE_SETS[image_set]
        self.images_dir = PurePosixPath(self.params["images_dir"] or folder)
        self.precropped = image_set == "aligned"
        self.face_fraction = float(self.params["expected_face_fraction"] or fraction)
        self.label_locator = PurePosixPath(self.params["label_file"]).as_posix()
        self.label_path = self.root / self.label_locator

    # --- shards: line ranges of the label file ----------------------------------------------

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        if not self.label_path.is_file():
            return [{"start": 1, "stop": None}]
        with open(self.label_path, "rb") as fh:
            n = sum(1 for _ in fh)
        size = max(1, min(max_items, -(-n // max(1, min_shards))))
        return [{"start": s, "stop": s + size} for s in range(1, max(n, 1) + 1, size)]

    def __iter__(self) -> Iterator[Sample | Reject]:
        return self.iter_shard({"start": 1, "stop": None})

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        if not self.label_path.is_file():
            if shard["start"] == 1:
                yield self.reject(
                    self.label_locator, "missing_label_file", f"RAF-DB labels are read from {self.label_locator}"
                )
            return
        for item in self.lines(shard["start"], shard["stop"]):
            yield item if isinstance(item, Reject) else self._sample(item)

    def lines(self, start: int = 1, stop: int | None = None) -> Iterator[LabelLine | Reject]:
        """Parsed label lines start..stop-1 (1-based), or a `bad_label_line` reject for each that does not parse."""
        with open(self.label_path, encoding="utf-8-sig", errors="replace") as fh:
            for number, text in enumerate(fh, 1):
                if number < start:
                    continue
                if stop is not None and number >= stop:
                    break
                if text.strip():
                    yield self._parse(number, text)

    def _parse(self, number: int, text: str) -> LabelLine | Reject:
        locator = f"{self.label_locator}:{number}"
        fields = text.split()
        if len(fields) != 2:
            return self.reject(
                locator, "bad_label_line", f"expected 'IMAGE CODE', found {len(fields)} fields: {text.strip()[:80]!r}"
            )
        name, code = fields
        if not IMAGE_NAME.match(name):
            return self.reject(locator, "bad_label_line", f"{name[:60]!r} is not an image file name")
        if not re.fullmatch(r"[+-]?[0-9]+", code):
            return self.reject(locator, "bad_label_line", f"label {code[:40]!r} is not a number")
        return LabelLine(number, name, int(code))

    # --- one image ---------------------------------------------------------------------------

    def image_locator(self, name: str) -> str:
        """Root-relative path of the image a label line names, in the chosen image set."""
        if self.params["image_set"] == "aligned":
            name = f"{PurePosixPath(name).stem}_aligned.jpg"
        return (self.images_dir / name).as_posix()

    def _sample(self, entry: LabelLine) -> Sample | Reject:
        locator = self.image_locator(entry.name)
        where = f"{self.label_locator}:{entry.line}"
        try:
            label = labels.to_canonical(LABELS, entry.code)
        except labels.UnknownLabel as exc:
            return self.reject(locator, "unknown_label", f"{exc} at {where} (RAF-DB codes are 1-7)")
        path = self.root / locator
        if not path.is_file():
            return self.reject(locator, "missing_image", f"named by {where} but not found")
        split = entry.split_original
        return Sample(
            source=self.name,
            locator=locator,
            label_native=str(entry.code),
            label=label,
            split=SPLITS.get(split) if split else None,
            split_original=split,
            path=str(path),
            precropped=self.precropped,
            expected_face_fraction=self.face_fraction,
        )

    # --- demo tree ----------------------------------------------------------------------------

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """16 label lines (10 train, 6 test, every code) with both image sets: 100x100 aligned
        crops and full photos of varied size where the face fills a third to a half."""
        lines = []
        for i in range(16):
            split, n = ("train", i + 1) if i < 10 else ("test", i - 9)
            name = f"{split}_{n:05d}.jpg" if split == "train" else f"{split}_{n:04d}.jpg"
            code = 1 + i % 7
            lines.append(f"{name} {code}\n")
            face = 20 + i
            write_image(
                out_dir / "Image" / "aligned" / f"{Path(name).stem}_aligned.jpg",
                faces.portrait(face, 100, face_fraction=0.8, jitter=0.02),
                quality=92,
            )
            width, height = 240 + 20 * (i % 5), 200 + 16 * (i % 4)
            px = int(min(width, height) * (0.35 + 0.03 * (i % 5)))
            photo = faces.compose(width, height, [(face, width * (0.4 + 0.04 * (i % 5)), height * 0.5, px)])
            write_image(out_dir / "Image" / "original" / name, photo, quality=92)
        label_file = out_dir / "EmoLabel" / "list_patition_label.txt"
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text("".join(lines))
