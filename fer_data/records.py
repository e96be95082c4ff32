"""The records that flow through the pipeline, and the one registry of reject reasons.

`Sample` (an image of a dataset, before face work) and `Reject` (an input that cannot become
a curated row, and why) are made by sources and consumed by the face pipeline and the engine;
they live here, below both, so that `imageio` and `faces` never import `sources`.

Every reject carries a reason code. What a code means for the numbers stewards read (is it a
data problem, the label policy at work, or a face not found?) is decided here once, and the
engine's counts, the Prefect run summary and the validator all read it: two copies of that
rule drifted apart before (Aff-Wild2 showed two face-found rates). Sources declare their own
codes as `Source.reasons`; `fer_data.sources.reasons(name)` merges them with the table below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

#: Extra per-sample values a source may set (Sample.extra); each is a nullable column of
#: the curated table (fer_data.schema), so every source's table shares one schema.
EXTRA_FIELDS = ("valence", "arousal", "label_votes")


@dataclass
class Sample:
    """One image of a dataset, before any face work.

    The image is either already decoded (`pixels`: CSV rows, video frames) or a file
    (`path`) that the worker process decodes, so that decoding runs in parallel and the
    main process never holds more than a chunk of images.
    """

    source: str
    locator: str  # root-relative path, or "file.csv:LINE"; stable across machines
    label_native: str | None
    label: str | None  # canonical name (fer_data.labels) or None when unlabelled
    split: str | None = None  # train / val / test, when the dataset defines one
    split_original: str | None = None  # the dataset's own split name
    subject_id: str | None = None
    sequence_id: str | None = None
    frame_index: int | None = None
    pixels: np.ndarray | None = None
    path: str | None = None
    raw_sha256: str | None = None
    precropped: bool = False  # the whole frame is the face box (FER2013)
    face_box: tuple[int, int, int, int] | None = None  # given detection: left, top, right, bottom
    face_side: str | None = None  # "left" / "right": keep the face on that side (two-person videos)
    provided_landmarks: np.ndarray | None = None  # (68, 2) in original image coordinates
    expected_face_fraction: float = 0.5  # expected face width / min(image side), for detection scale
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """An input that could not become a curated row, and why (a short reason code + detail)."""

    source: str
    locator: str
    reason: str
    detail: str = ""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def relative_locator(root: Path, path: Path) -> str:
    """Root-relative POSIX path: the stable, machine-independent name of a file sample."""
    return path.relative_to(root).as_posix()


# ---------------------------------------------------------------- reject reasons


class Kind(StrEnum):
    """What a reject says about the data, which decides the rate it counts in."""

    DATA = "data"  # the input is broken, missing or inconsistent: counts in a source's reject rate
    POLICY = "policy"  # the label policy or the annotators' verdict keeps it out: the data is fine
    NO_FACE = "no_face"  # face finding ran and found no usable face: counts in the face-found rate


@dataclass(frozen=True)
class Reason:
    """A reject reason code, its kind and what it means (one line, for reports and docs)."""

    code: str
    kind: Kind
    meaning: str
    #: A face was found, then failed a later check: it counts as found in the face-found rate.
    face_found: bool = False


#: Reasons the engine and the face pipeline give for any source, and data problems that many
#: sources share. A code no table declares is a data problem (Kind.DATA).
REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        Reason("unlabelled", Kind.POLICY, "the dataset gives this image no label (labels.keep_unlabelled is off)"),
        Reason("not_an_emotion", Kind.POLICY, "a real annotation that is not an expression class (none, other, ...)"),
        Reason("label_outside_target_set", Kind.POLICY, "the label is not one of labels.target_set's classes"),
        Reason("unreadable_image", Kind.DATA, "the file or pixels do not decode to an image"),
        Reason("no_face", Kind.NO_FACE, "the detector found no face in the image"),
        Reason("no_face_on_side", Kind.NO_FACE, "no face on the half of the frame the annotated person is on"),
        Reason("bad_face_box", Kind.NO_FACE, "the dataset's own face box is empty or too small"),
        Reason(
            "landmark_check_failed",
            Kind.DATA,
            "a face was found but its 68-point fit failed the plausibility check",
            face_found=True,
        ),
        Reason("unknown_label", Kind.DATA, "a native label that is not in the dataset's label table"),
        Reason("missing_image", Kind.DATA, "an image named by a label file is not there"),
        Reason("missing_label_file", Kind.DATA, "a label file the layout needs is missing"),
        Reason("bad_header", Kind.DATA, "a label file's header is not the expected one"),
        Reason("malformed_row", Kind.DATA, "a label-file row does not have the expected fields"),
        Reason("unparseable_name", Kind.DATA, "a file name does not follow the dataset's naming scheme"),
        Reason("unknown_split", Kind.DATA, "a split name the dataset does not define"),
        # Hostile or broken inputs (issue #9): each is one reject, and the run goes on.
        Reason(
            "image_too_large",
            Kind.DATA,
            "the image declares more pixels than faces.max_pixels (checked before decoding)",
        ),
        Reason(
            "not_a_regular_file", Kind.DATA, "a FIFO, device or folder where an image file was expected (never read)"
        ),
        Reason("outside_root", Kind.DATA, "a path that resolves outside the dataset root (.., absolute, or a symlink)"),
        Reason("duplicate_entry", Kind.DATA, "a label file names the same image again with the same label"),
        Reason("label_conflict", Kind.DATA, "a label file names the same image again with another label"),
        Reason(
            "unexpected_error",
            Kind.DATA,
            "reading or detecting raised an unforeseen error (logged, with its traceback)",
        ),
        Reason(
            "no_face_in_crop",
            Kind.NO_FACE,
            "a pre-cropped image or given face box holds no face (blank, uniform, noise)",
        ),
    )
}


def reason_table(declared: Iterable[Reason] = ()) -> dict[str, Reason]:
    """REASONS plus DECLARED (a source's own); a code declared twice with two kinds is a bug."""
    table = dict(REASONS)
    for reason in declared:
        known = table.get(reason.code)
        if known is not None and (known.kind, known.face_found) != (reason.kind, reason.face_found):
            raise ValueError(f"reject reason {reason.code!r} declared as {reason.kind} and as {known.kind}")
        table[reason.code] = reason
    return table


def kind_of(code: str, table: Mapping[str, Reason] = REASONS) -> Kind:
    """The kind of a reason code (undeclared codes are data problems)."""
    reason = table.get(code)
    return reason.kind if reason else Kind.DATA


def codes_of_kind(kind: Kind, table: Mapping[str, Reason] = REASONS) -> list[str]:
    return sorted(code for code, reason in table.items() if reason.kind == kind)


def face_search(code: str | None, table: Mapping[str, Reason] = REASONS) -> bool | None:
    """For one input: True when a face was found, False when face finding found none, None when it never ran.

    A curated row (code None) had its face found; a reject found a face only when its reason
    says so (a failed landmark fit); every other reject stopped before face finding or is
    not about faces. The face-found rate is found / searched over a run's inputs.
    """
    if code is None:
        return True
    reason = table.get(code)
    if reason is None:
        return None
    if reason.face_found:
        return True
    return False if reason.kind == Kind.NO_FACE else None


def face_found_counts(
    curated: int, rejected_by_reason: Mapping[str, int], table: Mapping[str, Reason] = REASONS
) -> tuple[int, int]:
    """(inputs where a face was found, inputs that went through face finding) of a run's counts."""
    found = searched = curated
    for code, count in rejected_by_reason.items():
        outcome = face_search(code, table)
        if outcome is not None:
            searched += count
            found += count if outcome else 0
    return found, searched


def rejects_by_kind(rejected_by_reason: Mapping[str, int], table: Mapping[str, Reason] = REASONS) -> dict[str, int]:
    """A run's reject counts summed by kind (data, policy, no_face; every kind listed, zeros included).

    The kinds answer different questions: data rejects are broken inputs to fix, policy rejects
    are the label policy at work, no-face rejects are the detector's misses.
    """
    out = dict.fromkeys((k.value for k in Kind), 0)
    for code, count in rejected_by_reason.items():
        out[kind_of(code, table).value] += count
    return out


def run_summary(curated: int, rejected_by_reason: Mapping[str, int], table: Mapping[str, Reason] = REASONS) -> dict:
    """The metrics a run reports beside its per-reason counts: rejects by kind and the face-found rate."""
    found, searched = face_found_counts(curated, rejected_by_reason, table)
    return {
        "rejected_by_kind": rejects_by_kind(rejected_by_reason, table),
        "face_found": found,
        "face_searched": searched,
        "face_found_rate": round(found / searched, 4) if searched else None,
    }
