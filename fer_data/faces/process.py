"""One sample in, one curated row (or a reject) out: decode, detect, landmarks, align, score."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fer_data import __version__
from fer_data.faces import align, landmarks, quality
from fer_data.faces.detect import Detection, choose_face, detect_faces
from fer_data.imageio import UnreadableImage, read_image
from fer_data.params import Params
from fer_data.records import EXTRA_FIELDS, Reject, Sample, sha256_bytes


def sample_id(source: str, locator: str) -> str:
    """Stable id from what identifies the input, never from its content or the run."""
    return hashlib.sha1(f"{source}\0{locator}".encode()).hexdigest()[:16]


def load(sample: Sample) -> tuple[np.ndarray, str]:
    """The sample's grey image and the sha256 of its raw input."""
    grey, digest, _ = load_image(sample)
    return grey, digest


def load_image(sample: Sample, colour: bool = False) -> tuple[np.ndarray, str, np.ndarray | None]:
    """(grey, sha256 of the raw input, RGB image or None): the RGB copy, from the same decode, only
    when `colour` is asked for and the input has colour (see fer_data.imageio.decode)."""
    if sample.pixels is not None:
        grey, rgb = sample.pixels, None
        if grey.ndim == 3:
            import cv2

            rgb = cv2.cvtColor(grey, cv2.COLOR_BGR2RGB) if colour else None
            grey = cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY)
        grey = np.ascontiguousarray(grey, dtype=np.uint8)
        return grey, sample.raw_sha256 or sha256_bytes(grey.tobytes()), rgb
    if sample.path is None:
        raise UnreadableImage("sample has neither pixels nor a path")
    grey, rgb, digest = read_image(sample.path, colour)
    return grey, sample.raw_sha256 or digest, rgb


def _face(sample: Sample, grey: np.ndarray, params: Params) -> tuple[Detection, int, str] | str:
    """(detection, number of faces, detector name), or a reject reason."""
    h, w = grey.shape
    if sample.face_box is not None:
        l, t, r, b = sample.face_box
        box = (max(0, int(l)), max(0, int(t)), min(w - 1, int(r)), min(h - 1, int(b)))
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            return "bad_face_box"
        return Detection(box, None), 1, "given"
    if sample.precropped:
        return Detection((0, 0, w - 1, h - 1), None), 1, "precropped"
    dets = detect_faces(grey, sample.expected_face_fraction, params.faces)
    if not dets:
        return "no_face"
    chosen = choose_face(dets, sample.face_side, w)
    if chosen is None:
        return "no_face_on_side"
    return chosen, len(dets), params.faces.detector


#: Above this roll the predictor's fit drifts (it was trained on near-upright faces), so the
#: landmarks are re-fitted on a copy turned upright and mapped back.
REFIT_ROLL_DEG = 8.0


@dataclass
class _Found:
    """A decoded image and the face chosen in it, waiting for its landmarks."""

    grey: np.ndarray
    digest: str
    det: Detection
    n_faces: int
    detector: str
    rgb: np.ndarray | None = None  # the colour original, kept for the face encoder (faces.embeddings)


def _locate(sample: Sample, params: Params) -> _Found | Reject:
    """Decode and detect (per image); the landmark fit comes after, for the whole batch."""
    try:
        grey, digest, rgb = load_image(sample, colour=params.faces.embeddings)
    except UnreadableImage as exc:
        return Reject(sample.source, sample.locator, "unreadable_image", str(exc))
    found = _face(sample, grey, params)
    if isinstance(found, str):
        details = {
            "no_face": f"no face found in {grey.shape[1]}x{grey.shape[0]} image",
            "no_face_on_side": f"no face on the {sample.face_side} half of the frame (the annotated person)",
            "bad_face_box": "dataset face box is empty",
        }
        return Reject(sample.source, sample.locator, found, details[found])
    return _Found(grey, digest, *found, rgb)


def fit_landmarks(images: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]]) -> list[np.ndarray]:
    """68 landmarks a face, for a batch; tilted heads get a second pass on a de-rotated copy."""
    import cv2

    points = list(landmarks.predict_many(images, boxes))
    redo = []
    for i, pts in enumerate(points):
        roll = quality.roll_degrees(pts)
        if REFIT_ROLL_DEG < abs(roll) <= 60:
            l, r = landmarks.eye_centres(pts)
            redo.append((i, cv2.getRotationMatrix2D(tuple(((l + r) / 2).tolist()), roll, 1.0)))
    if not redo:
        return points
    uprights, upright_boxes = [], []
    for i, m in redo:
        grey, box = images[i], boxes[i]
        uprights.append(
            cv2.warpAffine(
                grey, m, (grey.shape[1], grey.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        )
        cx, cy = align.transform_points(m, np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]))[0]
        hw, hh = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
        upright_boxes.append((round(cx - hw), round(cy - hh), round(cx + hw), round(cy + hh)))
    for (i, m), refit in zip(redo, landmarks.predict_many(uprights, upright_boxes)):
        points[i] = align.transform_points(cv2.invertAffineTransform(m), refit)
    return points


#: A batch's landmark fit runs when this many faces, or this many pixels of their images, wait:
#: 256 keeps each cascade's leaf table in cache over many faces (0.25 ms a face, 0.9 ms alone); the
#: pixel cap bounds a worker's memory for large frames (32 MB: 35 HD video frames).
BATCH_FACES = 256
BATCH_PIXELS = 32_000_000


def process_stream(
    items: Iterable[Sample | Reject], params: Params, batch_faces: int = BATCH_FACES, batch_pixels: int = BATCH_PIXELS
) -> Iterator[dict | Reject]:
    """Curate items lazily and in order: a row or a Reject each (Rejects given in pass through).

    Decoding and detection run image by image as items arrive; the landmark fit, the costly
    step, runs for a batch of faces at a time (fer_data.faces.ert). Never raises for bad input.
    """
    pending: list[tuple[Sample | Reject, _Found | Reject]] = []
    faces = pixels = 0
    for item in items:
        if isinstance(item, Reject):
            pending.append((item, item))
            continue
        found = _locate(item, params)
        if item.pixels is not None:
            item = replace(item, pixels=None)  # the grey copy in `found` is all that is needed now
        pending.append((item, found))
        if isinstance(found, _Found):
            faces += 1
            pixels += found.grey.size + (0 if found.rgb is None else found.rgb.size)
        if faces >= batch_faces or pixels >= batch_pixels:
            yield from _fit_and_finish(pending, params)
            pending, faces, pixels = [], 0, 0
    yield from _fit_and_finish(pending, params)


def _fit_and_finish(pending: list[tuple[Sample | Reject, _Found | Reject]], params: Params) -> Iterator[dict | Reject]:
    todo = [f for _, f in pending if isinstance(f, _Found)]
    fits = iter(fit_landmarks([f.grey for f in todo], [f.det.box for f in todo]))
    done = []
    for item, found in pending:
        points = next(fits) if isinstance(found, _Found) else None
        done.append((_finish(item, found, points, params) if points is not None else found, found, points))
    if params.faces.embeddings:
        _add_embeddings([(row, f, p) for row, f, p in done if isinstance(row, dict) and row["aligned"]], params)
    for row, _, _ in done:
        yield row


#: Faces a face-encoder batch (the last one padded, see FaceEncoder.encode): as fast a face as 64 on
#: CPU (BENCHMARKS.md, "Face embeddings") and at most 15 padded faces a landmark batch.
EMBED_BATCH = 16


def _add_embeddings(aligned: list[tuple[dict, _Found, np.ndarray]], params: Params) -> None:
    """dlib's face descriptor of each aligned row, from its original image (colour when it has colour),
    the batch's faces encoded together; one torch thread when every core runs a worker already."""
    if not aligned:
        return
    from fer_data.faces import embed

    encoder = embed.FaceEncoder(batch_size=EMBED_BATCH, threads=1 if params.run.worker_count() > 1 else None)
    images = [f.grey if f.rgb is None else f.rgb for _, f, _ in aligned]
    for (row, _, _), vector in zip(aligned, embed.embed_faces(images, [p for _, _, p in aligned], encoder)):
        row["embedding"] = vector.tolist()


def process(sample: Sample, params: Params) -> dict | Reject:
    """Curate one sample (a batch of one: loops should use process_stream)."""
    return next(process_stream([sample], params))


def _finish(sample: Sample, f: _Found, points: np.ndarray, params: Params) -> dict | Reject:
    fp = params.faces
    problem = quality.landmark_problem(
        points, f.det.box, fp.min_eye_distance_ratio, fp.max_eye_distance_ratio, fp.max_roll_deg, fp.max_shape_residual
    )
    if problem is None:
        return _aligned_row(sample, f.grey, f.digest, f.det, f.n_faces, f.detector, points, params)
    if sample.precropped and fp.precropped_fallback == "keep_unaligned":
        return _unaligned_row(sample, f.grey, f.digest, f.det, f.n_faces, f.detector, params)
    return Reject(sample.source, sample.locator, "landmark_check_failed", problem)


def _aligned_row(sample, grey, digest, det, n_faces, detector, points, params: Params) -> dict:
    ap = params.align
    dst_l, dst_r = align.eye_targets(ap.size, ap.eye_left, ap.eye_right)
    src_l, src_r = landmarks.eye_centres(points)
    m = align.similarity(src_l, src_r, dst_l, dst_r)
    face = align.warp(grey, m, ap.size)
    large = None
    if ap.extra_size:
        ml = align.similarity(src_l, src_r, *align.eye_targets(ap.extra_size, ap.eye_left, ap.eye_right))
        large = align.warp(grey, ml, ap.extra_size)
    row = _base_row(sample, grey, digest, det, n_faces, detector, face, large, params)
    row.update(
        aligned=True,
        landmarks=align.transform_points(m, points).astype(np.float32).ravel().tolist(),
        landmarks_original=points.astype(np.float32).ravel().tolist(),
        eye_distance=float(np.hypot(*(src_r - src_l))),
        roll_deg=quality.roll_degrees(points),
        yaw=quality.yaw_estimate(points),
        provided_landmarks_nme=_nme(points, sample.provided_landmarks),
    )
    return row


def _unaligned_row(sample, grey, digest, det, n_faces, detector, params: Params) -> dict:
    """Pre-cropped image whose landmark fit is not trustworthy: keep the crop, resized, flagged."""
    import cv2

    l, t, r, b = det.box
    crop = grey[t : b + 1, l : r + 1]

    def fit(size: int) -> np.ndarray:
        interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
        return cv2.resize(crop, (size, size), interpolation=interp)

    ap = params.align
    large = fit(ap.extra_size) if ap.extra_size else None
    row = _base_row(sample, grey, digest, det, n_faces, detector, fit(ap.size), large, params)
    row.update(
        aligned=False,
        landmarks=None,
        landmarks_original=None,
        eye_distance=None,
        roll_deg=None,
        yaw=None,
        provided_landmarks_nme=None,
    )
    return row


def _provided(points: np.ndarray | None) -> list[float] | None:
    """The dataset's own landmarks, kept beside ours (a later fit or a new agreement metric needs them)."""
    if points is None or points.shape != (68, 2):
        return None
    return points.astype(np.float32).ravel().tolist()


def _nme(points: np.ndarray, provided: np.ndarray | None) -> float | None:
    """Mean point distance to the dataset's own landmarks, normalised by their eye distance."""
    if provided is None or provided.shape != (68, 2):
        return None
    l, r = landmarks.eye_centres(provided)
    iod = float(np.hypot(*(r - l)))
    return float(np.linalg.norm(points - provided, axis=1).mean() / iod) if iod > 0 else None


def _base_row(sample: Sample, grey, digest, det: Detection, n_faces, detector, face, large, params: Params) -> dict:
    label_index = params.target.index(sample.label) if sample.label else None
    row = {
        "sample_id": sample_id(sample.source, sample.locator),
        "source": sample.source,
        "subject_id": sample.subject_id,
        "sequence_id": sample.sequence_id,
        "frame_index": sample.frame_index,
        "locator": sample.locator,
        "split": sample.split,
        "split_original": sample.split_original,
        "label_native": sample.label_native,
        "label": sample.label,
        "label_index": label_index,
        "image": face.tobytes(),
        "width": face.shape[1],
        "height": face.shape[0],
        "image_large": None if large is None else large.tobytes(),
        "large_size": None if large is None else large.shape[0],
        "bbox": list(det.box),
        "detector": detector,
        "det_score": det.score,
        "n_faces": n_faces,
        "face_size": float(det.width),
        "orig_width": grey.shape[1],
        "orig_height": grey.shape[0],
        "landmarks_provided": _provided(sample.provided_landmarks),
        "raw_sha256": digest,
        "pipeline_version": __version__,
        **quality.image_metrics(face),
    }
    for key in EXTRA_FIELDS:
        row[key] = sample.extra.get(key)
    return row
