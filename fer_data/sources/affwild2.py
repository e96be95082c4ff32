"""Aff-Wild2, expression track of the ABAW challenges: per-frame labels of YouTube videos.

Layout as distributed (the annotation folder may sit anywhere up to `search_depth` levels
below the root, e.g. `6th ABAW Annotations/EXPR_Recognition_Challenge/`):

    <annotations>/EXPR_Classification_Challenge/{Train_Set,Validation_Set}/<video>.txt  (3rd ABAW on)
    <annotations>/EXPR_Set/{Training_Set,Validation_Set}/<video>.txt                     (ABAW 2020/21)
    cropped_aligned/<video>/00001.jpg ...   112x112 face crops, 1-based, numbered like the lines
    videos/<video>.mp4 | .avi               raw videos (`video_dirs`; downloads use batch1/, batch2/, new_vids/)

An annotation file's first line names the classes (`Neutral,Anger,...,Surprise,Other`; the
older files have no `Other`), mapped through `LABELS` by name, never by position.
Line i+1 is the class index of frame i (frame 1 = `00001.jpg` = the video's first decoded
frame); -1 means the frame is not annotated. `<base>_left.txt` / `<base>_right.txt` annotate
the two people of the two-person video `<base>.mp4`: their samples keep the face on that half
of the frame; a frame with no face there is rejected (`no_face_on_side`), since the face on the
other half is the other person's.

Decisions:
* Frames: `frames: cropped` reads `cropped_aligned/` (precropped, no detection), `video`
  decodes the raw video with OpenCV, streamed (one frame in memory; `grab()` skips the frames
  between strides without converting them), `auto` prefers the crops per video.
* Sampling: every `frame_stride`-th frame (frames 1, 1+stride, ...: neighbouring frames are
  near duplicates), annotated ones only, then at most `max_frames_per_video` of them spread
  evenly over the video (0 = no cap). The cap is counted over the annotated frames of the
  whole video, so sharding a long video by frame range gives the same selection.
* Unannotated frames (-1) are not rejected one by one (there can be hundreds of thousands):
  each video (or frame range of one) that has any yields ONE `unannotated` reject whose
  detail says `unannotated_frames: N of L`.
* `Other` frames become samples labelled not_an_emotion, which the engine rejects before any
  face work; in video mode their pixels are not even converted (the frame is only grabbed).
* Mismatched lengths: a video with more frames than annotation lines yields one
  `annotation_shorter_than_video` reject (from the container's frame count, or the crop
  folder's frame numbers); lines beyond the video's end yield one
  `annotation_longer_than_video`; a video whose decoding stops before its declared frame
  count yields `broken_video`, and the frames decoded before the break are kept.
* Missing input: no crop folder and no video -> one `missing_video` for the annotation
  (with the number of frames lost); a crop missing from its folder (the crops leave out
  frames where no face was found) -> `missing_frame` for each selected frame.
* Malformed annotation lines -> `bad_annotation` at `<file>:LINE` (the first
  `MAX_LINE_REJECTS` of a file one by one, the rest in one summary row); a missing or
  numeric header -> `bad_header`.
* Subject and sequence are the annotation's video name (`<base>_left` is its own person);
  frame_index is the 1-based frame number; split from the set folder.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

import cv2
import numpy as np

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.params import Float, Int, Str, param
from fer_data.records import Kind, Reason
from fer_data.sources import parsing
from fer_data.sources.base import KeyedSource, Reject, Sample, SourceParams

#: Aff-Wild2 / ABAW expression class names as written on the annotation files' first line.
LABELS = {
    "Neutral": labels.NEUTRAL,
    "Anger": labels.ANGER,
    "Disgust": labels.DISGUST,
    "Fear": labels.FEAR,
    "Happiness": labels.HAPPINESS,
    "Sadness": labels.SADNESS,
    "Surprise": labels.SURPRISE,
    "Other": labels.NOT_AN_EMOTION,
}

log = logging.getLogger("fer_data.sources.affwild2")

#: Per file, bad lines reported one by one before the rest are summarised in one reject.
MAX_LINE_REJECTS = 20
UNANNOTATED = -1
SIDE = re.compile(r"^(?P<base>.+)_(?P<side>left|right)$")
RANGE = re.compile(r"^(?P<rel>.+)#(?P<start>\d+)-(?P<end>\d+)$")
CLASS_NAMES = {k.lower(): v for k, v in LABELS.items()}


@dataclass
class Annotation:
    """One parsed annotation file: class names, one code per frame line, and its defects."""

    rel: str  # root-relative path of the .txt
    set_dir: str | None
    classes: tuple[str, ...]
    codes: list[int | None]  # codes[i] is frame i+1; None = malformed line
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # (file line number, why)

    @property
    def video(self) -> str:
        return PurePosixPath(self.rel).stem

    @property
    def frames(self) -> int:
        return len(self.codes)


def parse_annotation(rel: str, set_dir: str | None, text: str) -> Annotation | str:
    """Parse an annotation file's text; a string says why its header is unusable."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return "the file is empty"
    classes = tuple(name.strip() for name in lines[0].split(","))
    if not all(classes) or any(re.fullmatch(r"[-+]?\d+", c) for c in classes):
        return f"first line {lines[0][:60]!r} is not a list of class names (e.g. Neutral,Anger,...,Other)"
    ann = Annotation(rel, set_dir, classes, [])
    for number, line in enumerate(lines[1:], start=2):
        code, why = _parse_code(line, len(classes))
        ann.codes.append(code)
        if why:
            ann.bad_lines.append((number, why))
    return ann


def _parse_code(line: str, n_classes: int) -> tuple[int | None, str | None]:
    text = line.strip()
    try:
        code = int(text)
    except ValueError:
        return None, f"{text[:40]!r} is not a class index"
    if code == UNANNOTATED or 0 <= code < n_classes:
        return code, None
    return None, f"class index {code} is neither -1 nor one of 0..{n_classes - 1}"


def select_frames(codes: Sequence[int | None], stride: int, cap: int) -> list[int]:
    """Frame numbers to curate: every stride-th annotated frame, at most `cap` spread evenly."""
    chosen = [n for n in range(1, len(codes) + 1, stride) if codes[n - 1] is not None and codes[n - 1] >= 0]
    if cap and len(chosen) > cap:
        picks = np.linspace(0, len(chosen) - 1, cap).round().astype(int)
        chosen = [chosen[i] for i in picks]
    return chosen


def split_side(video: str) -> tuple[str, str | None]:
    """`<base>_left` -> (`<base>`, "left"): two-person videos share one video file."""
    m = SIDE.match(video)
    return (m["base"], m["side"]) if m else (video, None)


@dataclass(frozen=True)
class Piece:
    """One unit of work: an annotation file, or the frame range [start, end] of one."""

    rel: str
    start: int = 1
    end: int | None = None  # None = to the last line (the whole file when start is 1)

    @classmethod
    def parse(cls, key: str) -> Piece:
        m = RANGE.match(key)
        return cls(m["rel"], int(m["start"]), int(m["end"])) if m else cls(key)

    @property
    def key(self) -> str:
        return self.rel if self.start == 1 and self.end is None else f"{self.rel}#{self.start}-{self.end}"

    def covers(self, frame: int) -> bool:
        return self.start <= frame and (self.end is None or frame <= self.end)

    def is_last(self, frames: int) -> bool:
        return self.end is None or self.end >= frames


class AffWild2Params(SourceParams):
    annotation_dirs: list[Str] = param(
        ["EXPR_Classification_Challenge", "EXPR_Recognition_Challenge", "EXPR_Set"],
        "a list of folder names",
        "the annotation folder names looked for, in order",
    )
    set_splits: dict[Str, Literal["train", "val", "test"]] = param(
        {"Train_Set": "train", "Training_Set": "train", "Validation_Set": "val"},
        "a mapping set folder -> train|val|test",
        "the split each annotation set folder stands for",
    )
    search_depth: Int = param(3, "an integer >= 1", "how deep below the root the annotation folder is looked for", ge=1)
    frames: Literal["auto", "cropped", "video"] = param(
        "auto", "auto, cropped or video", "crops (cropped_aligned/), decoded videos, or crops when present"
    )
    frames_dir: Str = param("cropped_aligned", "a folder name", "the crop folders' parent")
    frame_name: Str = param("{:05d}.jpg", "a format string", "a crop's file name from its 1-based frame number")
    video_dirs: list[Str] = param(
        ["videos", "batch1", "batch2", "new_vids"], "a list of folder names", "where videos are looked for"
    )
    video_extensions: list[Str] = param([".mp4", ".avi"], "a list of suffixes", "video file suffixes")
    frame_stride: Int = param(
        10, "an integer >= 1", "every n-th annotated frame (neighbours are near duplicates)", ge=1
    )
    max_frames_per_video: Int = param(0, "an integer >= 0 (0: no cap)", "most frames a video, spread over it", ge=0)
    expected_face_fraction: Float = param(
        0.25, "a number in (0, 1]", "in-the-wild faces: about a quarter of the frame height", gt=0, le=1
    )
    decode_threads: Int = param(1, "an integer >= 1", "FFmpeg threads a video (the engine's processes scale)", ge=1)


class AffWild2(KeyedSource):
    name = "affwild2"
    reasons = (Reason("unannotated", Kind.POLICY, "frames the annotation file marks -1 (not annotated)"),)
    params_model = AffWild2Params
    label_tables: ClassVar[Mapping[str, Mapping]] = {"classes": LABELS}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        p = self.params
        self.stride = int(p["frame_stride"])
        self.cap = int(p["max_frames_per_video"])

    # --- listing -------------------------------------------------------------------------

    @cached_property
    def annotation_dir(self) -> Path:
        """The annotation folder: the first name of `annotation_dirs` found below the root."""
        wanted = list(self.params["annotation_dirs"])
        found = sorted(self._find_dirs(set(wanted)), key=lambda d: (_rank(d, self.root, wanted), len(d.parts), str(d)))
        if not found:
            raise FileNotFoundError(
                f"affwild2: no annotation folder named {' or '.join(wanted)} within "
                f"{self.params['search_depth']} levels of {self.root}"
            )
        for other in found[1:]:
            log.warning("affwild2: using annotations in %s; ignoring %s", found[0], other)
        return found[0]

    def _find_dirs(self, wanted: set[str]) -> Iterator[Path]:
        """Folders named (or root-relative-pathed) as wanted, not descending into frame/video folders."""
        prune = {self.params["frames_dir"], *self.params["video_dirs"]}
        level = [self.root]
        for _ in range(int(self.params["search_depth"])):
            below = []
            for parent in level:
                for d in sorted(e for e in parent.iterdir() if e.is_dir() and not e.name.startswith(".")):
                    if d.name in wanted or d.relative_to(self.root).as_posix() in wanted:
                        yield d
                    elif d.name not in prune:
                        below.append(d)
            level = below

    def keys(self) -> Iterator[str]:
        """Annotation files (root-relative), sorted: `<annotations>/<set>/<video>.txt`."""
        base = self.annotation_dir
        files = [p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")]
        other = [p for p in files if p.suffix.lower() != ".txt"]
        if other:
            log.debug(
                "affwild2: skipped %d non-.txt file(s) in %s: %s", len(other), base, ", ".join(p.name for p in other)
            )
        yield from sorted(p.relative_to(self.root).as_posix() for p in files if p.suffix.lower() == ".txt")

    def read_annotation(self, rel: str) -> Annotation | Reject:
        path = self.root / rel
        inside = path.relative_to(self.annotation_dir).parts
        set_dir = inside[0] if len(inside) > 1 else None  # Train_Set / Validation_Set
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            return self.reject(rel, "bad_annotation", f"cannot read annotation file: {exc}")
        parsed = parse_annotation(rel, set_dir, text)
        if isinstance(parsed, str):
            return self.reject(f"{rel}:1", "bad_header", parsed)
        return parsed

    # --- where the frames come from ------------------------------------------------------

    @cached_property
    def videos(self) -> dict[str, Path]:
        """Video file stem -> path, over all `video_dirs` (first extension in the list wins)."""
        exts = [e.lower() for e in self.params["video_extensions"]]
        best: dict[str, tuple[tuple, Path]] = {}
        for name in self.params["video_dirs"]:
            top = self.root / name
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != self.params["frames_dir"])
                for fname in filenames:
                    p = Path(dirpath) / fname
                    if p.suffix.lower() in exts and not fname.startswith("."):
                        rank = (exts.index(p.suffix.lower()), len(p.parts), str(p))
                        if p.stem not in best or rank < best[p.stem][0]:
                            best[p.stem] = (rank, p)
        return {stem: path for stem, (_, path) in best.items()}

    def crop_dir(self, video: str) -> Path | None:
        d = self.root / self.params["frames_dir"] / video
        return d if self.params["frames"] in ("auto", "cropped") and d.is_dir() else None

    def video_file(self, video: str) -> tuple[Path, str | None] | None:
        """The video holding this annotation's person, and which side of it (two-person videos)."""
        if self.params["frames"] not in ("auto", "video"):
            return None
        if video in self.videos:
            return self.videos[video], None
        base, side = split_side(video)
        return (self.videos[base], side) if side and base in self.videos else None

    def frames_of(self, video: str) -> CroppedFrames | VideoFrames | None:
        """Where this annotation's frames come from: its crops when there (and allowed), else its video."""
        crops = self.crop_dir(video)
        if crops is not None:
            return CroppedFrames(self, crops)
        found = self.video_file(video)
        return VideoFrames(self, *found) if found is not None else None

    def _missing(self, video: str) -> str:
        looked = []
        if self.params["frames"] in ("auto", "cropped"):
            looked.append(f"no crop folder {self.params['frames_dir']}/{video}")
        if self.params["frames"] in ("auto", "video"):
            names = "|".join(self.params["video_extensions"])
            looked.append(f"no video {split_side(video)[0]}({names}) under {', '.join(self.params['video_dirs'])}")
        return " and ".join(looked)

    # --- one annotation file (or frame range of one) -------------------------------------

    def items(self, key: str) -> Iterator[Sample | Reject]:
        piece = Piece.parse(key)
        ann = self.read_annotation(piece.rel)
        if isinstance(ann, Reject):
            yield ann
            return
        yield from self._line_rejects(ann, piece)
        unannotated = sum(1 for n, c in enumerate(ann.codes, 1) if c == UNANNOTATED and piece.covers(n))
        if unannotated:
            span = ann.frames if piece.end is None else min(piece.end, ann.frames) - piece.start + 1
            yield self.reject(piece.key, "unannotated", f"unannotated_frames: {unannotated} of {span} (label -1)")
        frames = [n for n in select_frames(ann.codes, self.stride, self.cap) if piece.covers(n)]
        reader = self.frames_of(ann.video)
        if reader is None:
            yield self.reject(
                piece.key,
                "missing_video",
                f"{self._missing(ann.video)}: {len(frames)} selected annotated frame(s) lost",
            )
            return
        yield from reader.items(ann, piece, frames)

    def _line_rejects(self, ann: Annotation, piece: Piece) -> Iterator[Reject]:
        bad = [(line, why) for line, why in ann.bad_lines if piece.covers(line - 1)]
        for line, why in bad[:MAX_LINE_REJECTS]:
            yield self.reject(f"{ann.rel}:{line}", "bad_annotation", f"frame {line - 1}: {why}")
        if len(bad) > MAX_LINE_REJECTS:
            rest = bad[MAX_LINE_REJECTS:]
            yield self.reject(
                f"{ann.rel}:{rest[0][0]}",
                "bad_annotation",
                f"{len(rest)} more malformed line(s), lines {rest[0][0]}-{rest[-1][0]}",
            )

    def sample(self, ann: Annotation, frame: int, locator: str) -> Sample | Reject:
        """The labelled sample of one frame (no pixels yet), or an unknown_label reject."""
        native = ann.classes[ann.codes[frame - 1]]
        label = CLASS_NAMES.get(native.lower())
        if label is None:
            return self.reject(
                locator,
                "unknown_label",
                f"class {native!r} from the header of {ann.rel} is not an Aff-Wild2 class ({', '.join(LABELS)})",
            )
        split = self.params["set_splits"].get(ann.set_dir) if ann.set_dir else None
        return Sample(
            source=self.name,
            locator=locator,
            label_native=native,
            label=label,
            split=split,
            split_original=ann.set_dir,
            subject_id=ann.video,
            sequence_id=ann.video,
            frame_index=frame,
            expected_face_fraction=float(self.params["expected_face_fraction"]),
        )

    # --- sharding ------------------------------------------------------------------------

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        """Pieces of about equal frame counts: whole videos, long ones cut into frame ranges.

        Reads every annotation file (small text) to count the selected frames, so that a
        20,000-frame video does not become the one straggler shard of a run. A range of a raw
        video still decodes (grabs) the frames before it: seeking is not frame-accurate in
        every container, and a label on the wrong frame is worse than the extra decoding.
        """
        videos: list[tuple[str, int | None, list[int]]] = []  # (rel, frame lines if cuttable, selected)
        for rel in self.keys():
            ann = self.read_annotation(rel)
            if isinstance(ann, Reject):
                videos.append((rel, None, []))
                continue
            frames = select_frames(ann.codes, self.stride, self.cap)
            has_frames = self.frames_of(ann.video) is not None
            videos.append((rel, ann.frames if has_frames else None, frames))
        if not videos:
            return [{"keys": []}]
        target = parsing.items_per_shard(sum(max(1, len(f)) for *_, f in videos), max_items, min_shards)
        pieces = [p for rel, lines, frames in videos for p in _cut(rel, lines, frames, target)]
        return _pack(pieces, target)

    # --- demo ----------------------------------------------------------------------------

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """Three short videos (one two-person), one video as crops only, new-layout annotations."""
        videos = out_dir / "videos"
        write_video(videos / "demo_001.mp4", "mp4v", faces, 48, [(3, 160, 120, 96)])
        write_video(videos / "demo_002.avi", "MJPG", faces, 40, [(11, 150, 110, 90)])
        write_video(videos / "demo_003.mp4", "mp4v", faces, 40, [(21, 82, 118, 80), (27, 238, 122, 80)])
        crop = faces.face(40, 112).astype(np.int16)
        for n in range(1, 31):
            if n != 11:  # the real crops leave out frames where no face was found
                frame = np.clip(crop + int(6 * math.sin(n / 3)), 0, 255).astype(np.uint8)
                write_image(out_dir / "cropped_aligned" / "demo_004" / f"{n:05d}.jpg", frame, quality=92)
        ann = out_dir / "annotations" / "EXPR_Classification_Challenge"
        header = ",".join(LABELS)
        write_annotation(ann / "Train_Set" / "demo_001.txt", header, _segments(48, offset=0))
        write_annotation(ann / "Train_Set" / "demo_003_left.txt", header, _segments(40, offset=2))
        write_annotation(ann / "Validation_Set" / "demo_002.txt", header, _segments(40, offset=4))
        write_annotation(ann / "Validation_Set" / "demo_003_right.txt", header, _segments(40, offset=5))
        write_annotation(ann / "Validation_Set" / "demo_004.txt", header, _segments(30, offset=1))


class CroppedFrames:
    """The frames of one video from the challenge's crops (`cropped_aligned/<video>/00001.jpg`): face crops,
    used whole, no detection; frames where the organisers found no face have no crop."""

    def __init__(self, src: AffWild2, folder: Path):
        self.src, self.folder = src, folder

    def items(self, ann: Annotation, piece: Piece, frames: list[int]) -> Iterator[Sample | Reject]:
        crops = self.folder
        name = self.src.params["frame_name"]
        for n in frames:
            path = crops / name.format(n)
            locator = path.relative_to(self.src.root).as_posix()
            if not path.is_file():
                yield self.src.reject(
                    locator,
                    "missing_frame",
                    f"annotated frame {n} of {ann.video} has no crop (the crops omit frames where no face was found)",
                )
                continue
            item = self.src.sample(ann, n, locator)
            yield replace(item, path=str(path), precropped=True) if isinstance(item, Sample) else item
        if piece.is_last(ann.frames):
            beyond = [n for n in _frame_numbers(crops) if n > ann.frames]
            if beyond:
                yield self.src.reject(
                    piece.key,
                    "annotation_shorter_than_video",
                    f"{len(beyond)} crop(s) numbered {min(beyond)}-{max(beyond)} lie beyond the "
                    f"annotation's {ann.frames} frame lines",
                )


class VideoFrames:
    """The frames of one video decoded from the video file; `side` keeps the face on one half of a
    two-person video (`_left` / `_right` annotation files)."""

    def __init__(self, src: AffWild2, path: Path, side: str | None):
        self.src, self.path, self.side = src, path, side

    def items(self, ann: Annotation, piece: Piece, frames: list[int]) -> Iterator[Sample | Reject]:
        """Stream the selected frames of a video: grab() up to each, retrieve only what is used."""
        path, side = self.path, self.side
        rel = path.relative_to(self.src.root).as_posix()
        refused = self._refused(path, rel, len(frames))
        if refused is not None:
            yield self.src.reject(piece.key, *refused)
            return
        cap = cv2.VideoCapture(
            str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, int(self.src.params["decode_threads"])]
        )
        try:
            if not cap.isOpened():
                yield self.src.reject(
                    piece.key, "broken_video", f"OpenCV cannot open {rel}: {len(frames)} selected frame(s) lost"
                )
                return
            size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            cap_pixels = self.src.max_pixels
            if size[0] * size[1] > cap_pixels:
                yield self.src.reject(
                    piece.key,
                    "image_too_large",
                    f"{rel} declares {size[0]}x{size[1]} frames (faces.max_pixels {cap_pixels})",
                )
                return
            declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            decoded = 0  # frames consumed so far; the next one is frame decoded+1
            for i, n in enumerate(frames):
                while decoded < n and cap.grab():
                    decoded += 1
                item = self.src.sample(ann, n, f"{rel}#{side}/{n:05d}" if side else f"{rel}#{n:05d}")
                pixels = None
                if decoded == n and isinstance(item, Sample) and item.label != labels.NOT_AN_EMOTION:
                    ok, pixels = cap.retrieve()
                    if not ok:
                        decoded -= 1  # grabbed but not decodable: the stream is broken here
                if decoded < n:
                    yield self._end(ann, piece, rel, decoded, declared, len(frames) - i)
                    return
                yield replace(item, pixels=pixels, face_side=side) if isinstance(item, Sample) else item
            tail = self._length_check(ann, piece, rel, decoded, declared)
            if tail is not None:
                yield tail
        finally:
            cap.release()

    def _refused(self, path: Path, rel: str, selected: int) -> tuple[str, str] | None:
        """(reason, detail) for a video never to open: a FIFO or device (OpenCV would block on it), a link out of the root."""
        leak = self.src.symlink_leak(path)
        if leak:
            return "outside_root", f"{rel}: {leak}"
        if not path.is_file():
            return "not_a_regular_file", f"{rel} is not a regular file: {selected} selected frame(s) lost"
        return None

    def _end(self, ann: Annotation, piece: Piece, rel: str, decoded: int, declared: int, lost: int) -> Reject:
        """The video stopped before a selected frame: broken, or shorter than the annotation."""
        if declared > decoded:
            return self.src.reject(
                piece.key,
                "broken_video",
                f"decoding {rel} stopped after frame {decoded} of {declared}: "
                f"{lost} selected frame(s) lost, the {decoded} before the break are kept",
            )
        return self.src.reject(
            piece.key,
            "annotation_longer_than_video",
            f"{rel} has {decoded} frames, the annotation {ann.frames} frame lines: "
            f"{lost} selected annotated frame(s) have no video frame",
        )

    def _length_check(self, ann: Annotation, piece: Piece, rel: str, decoded: int, declared: int) -> Reject | None:
        """Frame-count mismatches the selected frames did not run into (container's count)."""
        if not piece.is_last(ann.frames) or declared <= 0:
            return None
        if declared > ann.frames:
            return self.src.reject(
                piece.key,
                "annotation_shorter_than_video",
                f"{rel} has {declared} frames, the annotation {ann.frames} frame lines: frames "
                f"{ann.frames + 1}-{declared} ({declared - ann.frames}) are not annotated",
            )
        if declared < ann.frames and decoded <= declared:
            return self.src.reject(
                piece.key,
                "annotation_longer_than_video",
                f"{rel} has {declared} frames, the annotation {ann.frames} frame lines "
                f"(no selected frame lay beyond the video's end)",
            )
        return None


def _rank(d: Path, root: Path, wanted: list[str]) -> int:
    rel = d.relative_to(root).as_posix()
    return wanted.index(rel) if rel in wanted else wanted.index(d.name)


def _frame_numbers(folder: Path) -> Iterator[int]:
    for entry in os.scandir(folder):
        stem = entry.name.partition(".")[0]
        if stem.isdigit():
            yield int(stem)


def _cut(rel: str, lines: int | None, frames: list[int], target: int) -> list[tuple[str, int]]:
    """A video's pieces (key, selected frames): whole, or consecutive frame ranges of about `target`.

    Only readable annotations whose frames exist are cut (`lines` is None otherwise), so
    file-level rejects (bad header, missing video) are always reported once.
    """
    if lines is None or len(frames) <= target:
        return [(rel, max(1, len(frames)))]
    pieces, start = [], 1
    for i in range(0, len(frames), target):
        chunk = frames[i : i + target]
        end = lines if i + target >= len(frames) else chunk[-1]
        pieces.append((Piece(rel, start, end).key, len(chunk)))
        start = end + 1
    return pieces


def _pack(pieces: list[tuple[str, int]], target: int) -> list[dict[str, Any]]:
    """Consecutive pieces grouped into shards of at most `target` selected frames (one piece at least)."""
    shards, keys, load = [], [], 0
    for key, size in pieces:
        if keys and load + size > target:
            shards.append({"keys": keys})
            keys, load = [], 0
        keys.append(key)
        load += size
    if keys:
        shards.append({"keys": keys})
    return shards


def _segments(n: int, offset: int) -> list[int]:
    """Synthetic per-frame codes: 6-frame segments cycling over the classes, with an unannotated
    stretch (-1) and an `Other` segment, like the real files' mix."""
    cycle = [0, 1, 2, 3, 4, 5, 6, 7, -1]
    return [cycle[(offset + i // 6) % len(cycle)] for i in range(n)]


def write_annotation(path: Path, header: str, codes: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(f"{c}\n" for c in codes))


def write_video(
    path: Path,
    fourcc: str,
    faces: DemoFaces,
    n_frames: int,
    people: list[tuple[int, float, float, int]],
    size: tuple[int, int] = (320, 240),
) -> None:
    """A short video of real faces drifting a few pixels a frame (OpenCV's built-in encoders:
    mp4v in .mp4 and MJPG in .avi decode back with the pip opencv wheels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, size, True)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video {path}")
    try:
        for t in range(n_frames):
            phase = 2 * math.pi * t / n_frames
            placed = [
                (i, x + 10 * math.sin(phase + k), y + 4 * math.cos(phase), px) for k, (i, x, y, px) in enumerate(people)
            ]
            writer.write(cv2.cvtColor(faces.compose(size[0], size[1], placed), cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
