"""CK+ (Extended Cohn-Kanade), as distributed: posed sequences from neutral to peak expression.

Layout (the four zips of the distribution, unpacked side by side):

    cohn-kanade-images/S005/001/S005_001_00000001.png ...   frames of sequence 001 of subject S005
    Emotion/S005/001/S005_001_00000011_emotion.txt          one float, e.g. "   3.0000000e+00"
    Landmarks/S005/001/S005_001_00000001_landmarks.txt      68 lines of "x y" (AAM tracks)

Some copies name the label folder `Emotion_labels` (the zip's name); both are found. Codes:
0 neutral .. 7 surprise (`LABELS`). Only 327 of the 593 sequences have an emotion file;
it sits at the peak (last) frame. Frames are 640x490 grey, 640x480 or 720x480 colour.

Which frames get which label. A sequence runs from a neutral face to the peak, so its first
frames are labelled neutral (CK+'s own code 0, written as label_native "0") and its last
frames get the sequence's emotion; the frames in between are rejected as
`between_neutral_and_peak`, so every frame is accounted for. How many frames count as
"first" and "last" is `neutral_frames` / `peak_frames`: a value below 1 is a fraction of the
sequence length (rounded, at least one frame), a value >= 1 a frame count, 0 none. Peak
frames win where the two overlap (very short sequences).

Positions are judged by frame NUMBER against the true sequence length, which is the highest
frame number known from images, landmark files or the emotion file. So a copy that kept only
the first and the peak frame of each sequence (the landmarks of every frame still present)
still labels them right.

Unlabelled sequences: by default their frames are yielded without a label, so the engine
rejects them as `unlabelled` (or keeps them when `labels.keep_unlabelled` is on);
`unlabelled_as_neutral: true` uses their first frames as neutral, as some papers do.

A broken emotion file (text, empty, several numbers, a non-integer) rejects every frame of
its sequence as `bad_label_file`, an out-of-range code as `unknown_label`; the detail names
the file. A landmark file that does not hold 68 points does not cost the frame: the frame
is kept without provided landmarks and a warning is logged (they only feed the
`provided_landmarks_nme` agreement metric). CK+ has no official split.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fer_data import labels
from fer_data.demo import DemoFaces, placed_landmarks, write_image
from fer_data.imageio import is_image_file
from fer_data.params import Bool, Float, Str, param
from fer_data.records import Kind, Reason
from fer_data.sources.base import KeyedSource, Reject, Sample, SourceParams, relative_locator

LABELS = {
    0: labels.NEUTRAL,
    1: labels.ANGER,
    2: labels.CONTEMPT,
    3: labels.DISGUST,
    4: labels.FEAR,
    5: labels.HAPPINESS,
    6: labels.SADNESS,
    7: labels.SURPRISE,
}

log = logging.getLogger(__name__)

FRAME_NAME = re.compile(r"^(?P<subject>S\d+)_(?P<sequence>\d+)_(?P<frame>\d+)\.[A-Za-z]+$")
EMOTION_NAME = re.compile(r"^S\d+_\d+_(?P<frame>\d+)_emotion\.txt$", re.IGNORECASE)
LANDMARKS_NAME = re.compile(r"^S\d+_\d+_(?P<frame>\d+)_landmarks\.txt$", re.IGNORECASE)

#: Folder names tried in order when params leave `images_dir` / `emotion_dir` / `landmarks_dir` unset.
IMAGE_DIRS = ("cohn-kanade-images", "cohn-kanade-images/cohn-kanade-images")
EMOTION_DIRS = ("Emotion", "Emotion_labels", "Emotion_labels/Emotion")
LANDMARK_DIRS = ("Landmarks", "Landmarks/Landmarks")


@dataclass(frozen=True)
class SequenceLabel:
    """What a sequence's emotion file says: a code, or the problem that makes it unusable."""

    locator: str
    frame: int | None
    code: int | None = None
    label: str | None = None
    reason: str | None = None  # bad_label_file / unknown_label
    detail: str = ""


def frame_count(value: float, length: int) -> int:
    """Frames covered by a `neutral_frames` / `peak_frames` value for a sequence of `length`."""
    if value <= 0:
        return 0
    if value >= 1:
        return min(int(value), length)
    return min(length, max(1, int(value * length + 0.5)))


def parse_emotion(text: str) -> int:
    """The integer code in an emotion file's text (raises ValueError with a readable message)."""
    tokens = text.split()
    if len(tokens) != 1:
        raise ValueError(f"expected one number, found {len(tokens)} tokens: {text.strip()[:60]!r}")
    try:
        value = float(tokens[0])
    except ValueError:
        raise ValueError(f"{tokens[0][:40]!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{tokens[0]!r} is not a whole-number emotion code")
    return int(value)


def parse_landmarks(text: str) -> np.ndarray:
    """(68, 2) points from a landmark file's text (raises ValueError when it is not 68 x/y pairs)."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if len(rows) != 68 or any(len(r) != 2 for r in rows):
        raise ValueError(f"expected 68 lines of 'x y', found {len(rows)} non-empty lines")
    try:
        points = np.array(rows, dtype=np.float64)
    except ValueError:
        raise ValueError("a landmark line holds something that is not a number") from None
    if not np.isfinite(points).all():
        raise ValueError("landmark coordinates are not finite")
    return points


class CKPlusParams(SourceParams):
    neutral_frames: Float = param(
        0.2, "a number >= 0 (< 1: a fraction, >= 1: a count)", "first frames of a sequence labelled neutral", ge=0
    )
    peak_frames: Float = param(
        0.3, "a number >= 0 (< 1: a fraction, >= 1: a count)", "last frames labelled the sequence's emotion", ge=0
    )
    unlabelled_as_neutral: Bool = param(
        False, "true or false", "sequences without an emotion file still give their first frames as neutral"
    )
    # Faces are about half the 490/480 px frame height (dlib box ~250-300 px on real CK+).
    expected_face_fraction: Float = param(0.5, "a number in (0, 1]", "face width / frame height", gt=0, le=1)
    images_dir: Str | None = param(None, "null or a folder", "the image folder (null: the first of IMAGE_DIRS)")
    emotion_dir: Str | None = param(None, "null or a folder", "the emotion labels (null: Emotion/ or Emotion_labels/)")
    landmarks_dir: Str | None = param(None, "null or a folder", "the provided landmarks (null: Landmarks/)")


class CKPlus(KeyedSource):
    name = "ckplus"
    reasons = (Reason("between_neutral_and_peak", Kind.POLICY, "a frame between the neutral onset and the peak"),)
    params_model = CKPlusParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"codes": LABELS}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        images = self._folder("images_dir", IMAGE_DIRS)
        if images is None:
            raise FileNotFoundError(f"ckplus: no {IMAGE_DIRS[0]}/ folder under {self.root}")
        self.images = images
        self.emotion = self._folder("emotion_dir", EMOTION_DIRS)
        self.landmarks = self._folder("landmarks_dir", LANDMARK_DIRS)
        if self.emotion is None:
            log.warning("ckplus: no Emotion/ folder under %s: every sequence is unlabelled", self.root)

    def _folder(self, param: str, candidates: tuple[str, ...]) -> Path | None:
        """The configured folder, or the first candidate that exists (None when none does)."""
        names = (self.params[param],) if self.params.get(param) else candidates
        for name in names:
            if (self.root / name).is_dir():
                return self.root / name
        return None

    # --- keys: one per sequence folder ----------------------------------------------------

    def keys(self) -> Iterator[str]:
        found = set(_sequence_dirs(self.images))
        if self.emotion is not None:
            found |= set(_sequence_dirs(self.emotion))  # labelled sequences without frames are reported
        yield from sorted(found)

    def items(self, key: str) -> Iterator[Sample | Reject]:
        subject = key.split("/")[0]
        frames, bad_names = self._frames(key)
        yield from bad_names
        label = self._sequence_label(key)
        if not frames:
            if label is not None:
                yield self.reject(
                    label.locator,
                    "missing_image",
                    f"the emotion file labels sequence {key}, but {self._loc(self.images / key)}/ has no frames",
                )
            return
        landmark_files = self._landmark_files(key)
        known = [*frames, *landmark_files, *([label.frame] if label and label.frame else [])]
        length = max(known)
        n_peak = frame_count(float(self.params["peak_frames"]), length)
        n_neutral = min(frame_count(float(self.params["neutral_frames"]), length), length - n_peak)
        for number in sorted(frames):
            for locator in frames[number]:
                yield self._frame_item(
                    locator, key, subject, number, length, n_neutral, n_peak, label, landmark_files.get(number)
                )

    # --- one frame ---------------------------------------------------------------------------

    def _frame_item(
        self,
        locator: str,
        key: str,
        subject: str,
        number: int,
        length: int,
        n_neutral: int,
        n_peak: int,
        label: SequenceLabel | None,
        landmark_file: Path | None,
    ) -> Sample | Reject:
        """The sample (or reject) for frame `number` of a sequence `length` frames long."""
        if label is not None and label.reason:
            return self.reject(locator, label.reason, f"{label.locator}: {label.detail}")
        peak, neutral = number > length - n_peak, number <= n_neutral
        if label is None:
            if neutral and self.params["unlabelled_as_neutral"]:
                code, canonical = 0, LABELS[0]
            else:
                code, canonical = None, None
        elif peak:
            code, canonical = label.code, label.label
        elif neutral:
            code, canonical = 0, LABELS[0]
        else:
            return self.reject(locator, "between_neutral_and_peak", _between_detail(number, length, n_neutral, n_peak))
        return Sample(
            source=self.name,
            locator=locator,
            label_native=None if code is None else str(code),
            label=canonical,
            subject_id=subject,
            sequence_id=key,
            frame_index=number,
            path=str(self.root / locator),
            provided_landmarks=self._read_landmarks(landmark_file),
            expected_face_fraction=float(self.params["expected_face_fraction"]),
        )

    # --- files of one sequence ---------------------------------------------------------------

    def _loc(self, path: Path) -> str:
        return relative_locator(self.root, path)

    def _frames(self, key: str) -> tuple[dict[int, list[str]], list[Reject]]:
        """Frame number -> image locators of a sequence, and rejects for unparseable names."""
        folder = self.images / key
        frames: dict[int, list[str]] = {}
        bad: list[Reject] = []
        if not folder.is_dir():
            return frames, bad
        for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
            m = FRAME_NAME.match(path.name)
            if m is None:
                bad.append(
                    self.reject(
                        self._loc(path),
                        "unparseable_name",
                        "expected SUBJECT_SEQUENCE_FRAME.png, e.g. S005_001_00000011.png",
                    )
                )
                continue
            frames.setdefault(int(m["frame"]), []).append(self._loc(path))
        return frames, bad

    def _landmark_files(self, key: str) -> dict[int, Path]:
        """Frame number -> landmark file of a sequence (empty when there is no Landmarks/ folder)."""
        if self.landmarks is None or not (self.landmarks / key).is_dir():
            return {}
        out = {}
        for path in (self.landmarks / key).iterdir():
            m = LANDMARKS_NAME.match(path.name)
            if m and path.is_file():
                out[int(m["frame"])] = path
        return out

    def _read_landmarks(self, path: Path | None) -> np.ndarray | None:
        """A frame's provided landmarks; a broken file costs the landmarks, not the frame."""
        if path is None:
            return None
        try:
            return parse_landmarks(path.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError) as exc:
            log.warning("ckplus: %s: %s; the frame is kept without provided landmarks", self._loc(path), exc)
            return None

    def _sequence_label(self, key: str) -> SequenceLabel | None:
        """The sequence's emotion, None when it has no emotion file."""
        folder = None if self.emotion is None else self.emotion / key
        if folder is None or not folder.is_dir():
            return None
        files = sorted(p for p in folder.iterdir() if p.is_file() and EMOTION_NAME.match(p.name))
        if not files:
            return None
        locator = self._loc(files[-1])
        frame = int(EMOTION_NAME.match(files[-1].name)["frame"])
        if len(files) > 1:
            return SequenceLabel(
                locator,
                frame,
                reason="bad_label_file",
                detail=f"{len(files)} emotion files for one sequence; CK+ has one, at the peak frame",
            )
        try:
            code = parse_emotion(files[-1].read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            return SequenceLabel(locator, frame, reason="bad_label_file", detail=f"cannot read: {exc.strerror or exc}")
        except ValueError as exc:
            return SequenceLabel(locator, frame, reason="bad_label_file", detail=str(exc))
        try:
            return SequenceLabel(locator, frame, code=code, label=labels.to_canonical(LABELS, code))
        except labels.UnknownLabel as exc:
            return SequenceLabel(locator, frame, reason="unknown_label", detail=f"{exc} (CK+ codes are 0-7)")

    # --- demo tree ----------------------------------------------------------------------------

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """Five sequences, 32 frames: complete ones, one with only its first and peak frame
        (landmarks for every frame, like the copies found online), an unlabelled one, and a
        640x480 colour one. Faces drift and grow a little along each sequence."""
        plan = [  # subject, sequence, face index, frames, frames present (None = all), code, colour
            ("S010", "001", 3, 10, None, 5, False),
            ("S010", "002", 3, 12, (1, 12), 7, False),
            ("S011", "001", 5, 8, None, 1, False),
            ("S011", "002", 5, 6, None, None, False),
            ("S012", "001", 7, 6, None, 2, True),
        ]
        for subject, seq, face, length, present, code, colour in plan:
            key = f"{subject}/{seq}"
            for number in range(1, length + 1):
                stem = f"{subject}_{seq}_{number:08d}"
                cx, cy, px = 316 + 2 * number, 240 - number, 236 + 2 * number
                grey = faces.compose(640, 480 if colour else 490, [(face, cx, cy, px)])
                points = placed_landmarks(grey, cx, cy, px)
                _write_floats(out_dir / "Landmarks" / key / f"{stem}_landmarks.txt", points)
                if present is None or number in present:
                    pixels = np.dstack([grey, grey, (grey * 0.9).astype(np.uint8)]) if colour else grey
                    write_image(out_dir / "cohn-kanade-images" / key / f"{stem}.png", pixels)
            if code is not None:
                _write_floats(
                    out_dir / "Emotion" / key / f"{subject}_{seq}_{length:08d}_emotion.txt", np.array([[code]])
                )


def _sequence_dirs(folder: Path) -> Iterator[str]:
    """`Sxxx/yyy` keys of the two-level subject/sequence folders under `folder`."""
    for subject in folder.iterdir():
        if subject.is_dir() and not subject.name.startswith("."):
            for seq in subject.iterdir():
                if seq.is_dir() and not seq.name.startswith("."):
                    yield f"{subject.name}/{seq.name}"


def _between_detail(number: int, length: int, n_neutral: int, n_peak: int) -> str:
    neutral = f"frames 1-{n_neutral}" if n_neutral else "no frames"
    peak = f"frames {length - n_peak + 1}-{length}" if n_peak else "no frames"
    return (
        f"frame {number} of {length}: only {neutral} (neutral) and {peak} (peak) are labelled; "
        "see sources.ckplus.neutral_frames / peak_frames"
    )


def _write_floats(path: Path, values: np.ndarray) -> None:
    """Numbers in CK+'s text style: '   2.5479794e+02   2.2885649e+02' per row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{v:16.7e}" for v in row) + "\n" for row in np.atleast_2d(values)))
