"""Production batches for drift checks: a folder of images and videos, or a Parquet file an app wrote.

Folder (`inbox`): the class-folder walker (fer_data.sources.folder) without split detection
(a production batch has no train/test level), where labels are optional: files in a class
folder take its label, loose files are unlabelled, and a `labels.csv` in the batch root
(`file,label`; file root-relative) wins over the folder. Videos (`.mp4 .avi .mov .mkv .webm`)
are decoded with OpenCV, every `video_stride`-th frame, at most `max_frames_per_video`,
streamed (one frame in memory).

Parquet (`inbox_parquet`): one row per image, the encoded file bytes in column `image`
(JPEG/PNG/...), optional `label` (a class name) and `id` (the locator; else `row:N`). Shards are
row groups, read by the worker that curates them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import pyarrow.parquet as pq

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.imageio import UnreadableImage, decode_grey
from fer_data.params import Bool, Float, Int, Str, param
from fer_data.sources.base import Reject, Sample, Source, SourceParams, sha256_bytes
from fer_data.sources.folder import ClassFolders, FolderParams, Labelled, Place

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})


class InboxParams(FolderParams):
    split_dirs: dict[Str, Literal["train", "val", "test"]] = param(
        {}, "a mapping folder name -> train|val|test", "none by default: production batches have no split level"
    )
    labels_csv: Str = param("labels.csv", "a file name", "file,label CSV in the batch root (wins over class folders)")
    # Neighbouring frames are near-duplicates: every 10th is 1/3 s at 30 fps.
    video_stride: Int = param(10, "an integer >= 1", "every n-th video frame", ge=1)
    # A long video must not outweigh the photos of a batch.
    max_frames_per_video: Int = param(50, "an integer >= 0", "frames kept per video (0: all)", ge=0)


class Inbox(ClassFolders):
    """A folder batch: images and videos, labels from class folders or labels.csv (both optional)."""

    name = "inbox"
    params_model = InboxParams

    @cached_property
    def csv_labels(self) -> dict[str, str]:
        """labels.csv as {root-relative file: label as written} ({} when there is none)."""
        path = self.root / str(self.params["labels_csv"])
        if not path.is_file():
            return {}
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not {"file", "label"} <= set(reader.fieldnames or ()):
                raise ValueError(f"{path}: needs the columns file,label (got {reader.fieldnames})")
            return {PurePosixPath(r["file"]).as_posix(): r["label"].strip() for r in reader if r["label"]}

    def label_of(self, place: Place) -> Labelled:
        native = self.csv_labels.get(place.key)
        if native is None:
            return super().label_of(place)
        label = self.table.get(native.lower())
        if label is None:
            return self.reject(place.key, "unknown_label", f"labels.csv gives {native!r}, not a known class name")
        return native, label

    def items(self, key: str) -> Iterator[Sample | Reject]:
        if PurePosixPath(key).suffix.lower() not in VIDEO_SUFFIXES:
            yield from super().items(key)
            return
        place = self.place(key)
        labelled = self.label_of(place) if isinstance(place, Place) else place
        if isinstance(labelled, Reject):
            yield labelled
            return
        yield from self._frames(key, *labelled)

    def _frames(self, key: str, native: str | None, label: str | None) -> Iterator[Sample | Reject]:
        """Every video_stride-th frame: grab() skips the frames between without converting them."""
        import cv2

        stride, cap_n = int(self.params["video_stride"]), int(self.params["max_frames_per_video"])
        cap = cv2.VideoCapture(str(self.root / key))
        if not cap.isOpened():
            yield self.reject(key, "unreadable_video", "OpenCV cannot open this video")
            return
        try:
            frame, kept = 0, 0
            while (not cap_n or kept < cap_n) and cap.grab():
                if frame % stride == 0:
                    ok, pixels = cap.retrieve()
                    if not ok:
                        yield self.reject(f"{key}#frame={frame}", "unreadable_video", "frame does not decode")
                        return
                    kept += 1
                    yield Sample(
                        source=self.name,
                        locator=f"{key}#frame={frame}",
                        label_native=native,
                        label=label,
                        sequence_id=key,
                        frame_index=frame,
                        pixels=pixels,
                        expected_face_fraction=float(self.params["expected_face_fraction"]),
                    )
                frame += 1
        finally:
            cap.release()

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """A day's uploads: class folders, loose unlabelled photos and a labels.csv for two of them."""
        classes = ("happy", "sad", "neutral", "surprise")
        for i in range(16):
            write_image(out_dir / classes[i % 4] / f"upload_{i:04d}.jpg", faces.portrait(40 + i, 160))
        for i in range(16, 20):
            write_image(out_dir / f"upload_{i:04d}.png", faces.portrait(40 + i, 160))
        (out_dir / "labels.csv").write_text("file,label\nupload_0016.png,angry\nupload_0017.png,fear\n")


class InboxParquetParams(SourceParams):
    class_map: dict[Str, Str] = param({}, "a mapping label name -> canonical class", "extra label names")
    expected_face_fraction: Float = param(0.5, "a number in (0, 1]", "face width / image side", gt=0, le=1)
    precropped: Bool = param(False, "true or false", "true for tight face crops (no detection)")


class InboxParquet(Source):
    """A Parquet batch (a file, or a folder of files): encoded images in `image`, optional `label` and `id`."""

    name = "inbox_parquet"
    params_model = InboxParquetParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"names": labels.FOLDER_NAMES}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        self.table = labels.folder_table(self.params.get("class_map") or {})
        self.files = sorted(self.root.rglob("*.parquet")) if self.root.is_dir() else [self.root]
        if not self.files:
            raise ValueError(f"{self.root}: no .parquet files")
        names = pq.read_schema(self.files[0]).names
        if "image" not in names:
            raise ValueError(f"{self.files[0]}: a Parquet batch needs an `image` column of encoded image bytes")
        self.columns = [c for c in ("image", "label", "id") if c in names]

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        """One shard per row group of each file (row groups are the unit Parquet reads)."""
        return [{"file": str(f), "row_group": i} for f in self.files for i in range(pq.ParquetFile(f).num_row_groups)]

    def __iter__(self) -> Iterator[Sample | Reject]:
        for shard in self.shards(0, 0):
            yield from self.iter_shard(shard)

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        pf = pq.ParquetFile(shard["file"])
        first = sum(pf.metadata.row_group(i).num_rows for i in range(shard["row_group"]))
        rows = pf.read_row_group(shard["row_group"], columns=self.columns).to_pylist()
        name = Path(shard["file"]).relative_to(self.root).as_posix() if self.root.is_dir() else self.root.name
        for n, row in enumerate(rows, first):
            yield self._sample(row, row.get("id") or f"{name}:{n}")

    def _sample(self, row: dict, locator: str) -> Sample | Reject:
        native = row.get("label")
        label = None
        if native:
            label = self.table.get(str(native).lower())
            if label is None:
                return self.reject(locator, "unknown_label", f"label {native!r} is not a known class name")
        data = row["image"]
        try:
            pixels = decode_grey(data)
        except UnreadableImage as exc:
            return self.reject(locator, "unreadable_image", str(exc))
        return Sample(
            source=self.name,
            locator=str(locator),
            label_native=native,
            label=label,
            pixels=pixels,
            raw_sha256=sha256_bytes(data),
            precropped=bool(self.params["precropped"]),
            expected_face_fraction=float(self.params["expected_face_fraction"]),
        )

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """What an app might write: PNG bytes with ids, half of them labelled."""
        import io

        import pyarrow as pa
        from PIL import Image

        rows = []
        for i in range(12):
            buf = io.BytesIO()
            Image.fromarray(faces.portrait(60 + i, 160)).save(buf, format="PNG")
            label = ("happy", "sad", "angry")[i % 3] if i % 2 == 0 else None
            rows.append({"id": f"app-{i:04d}", "image": buf.getvalue(), "label": label})
        out_dir.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), out_dir / "batch.parquet")
