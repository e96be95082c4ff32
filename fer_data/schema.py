"""Arrow schemas of the curated and rejects tables: the contract with training and validation.

One schema for every source (source-specific fields are nullable), so curated tables of
several datasets can be concatenated or read as one Parquet dataset. Field metadata holds
the documentation that `fer-data schema` prints and that ends up in the Parquet footer.
"""

from __future__ import annotations

import pyarrow as pa

from fer_data import __version__

#: Bumped with every change of columns (2: landmarks_provided added, nullable; 3: embedding added, nullable).
SCHEMA_VERSION = "3"


def _f(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


CURATED = pa.schema(
    [
        _f("sample_id", pa.string(), "sha1 of source + locator (first 16 hex): stable across runs and machines", False),
        _f("source", pa.string(), "dataset source name (fer2013, jaffe, ...)", False),
        _f("subject_id", pa.string(), "person id where the dataset has one"),
        _f("sequence_id", pa.string(), "sequence / video id (CK+, Aff-Wild2)"),
        _f("frame_index", pa.int32(), "frame number within the sequence or video"),
        _f("locator", pa.string(), "root-relative file path, or CSV file and line (fer2013.csv:637)", False),
        _f("split", pa.string(), "train / val / test from the dataset's own split, when it has one"),
        _f("split_original", pa.string(), "the dataset's own split name (Training, PublicTest, ...)"),
        _f("label_native", pa.string(), "label as written in the dataset"),
        _f("label", pa.string(), "canonical label (fer_data.labels.CANONICAL)"),
        _f("label_index", pa.int16(), "index of label in the target set (params labels.target_set)"),
        _f("image", pa.binary(), "aligned grey face, raw uint8 bytes, row-major, height x width", False),
        _f("width", pa.int16(), "aligned image width", False),
        _f("height", pa.int16(), "aligned image height", False),
        _f("image_large", pa.binary(), "optional larger aligned grey face (align.extra_size)"),
        _f("large_size", pa.int16(), "side of image_large"),
        _f("aligned", pa.bool_(), "false when a pre-cropped image was kept unaligned (landmark fit failed)", False),
        _f("landmarks", pa.list_(pa.float32(), 136), "68 (x, y) pairs in aligned-image coordinates, flattened"),
        _f("landmarks_original", pa.list_(pa.float32(), 136), "68 (x, y) pairs in original-image coordinates"),
        _f(
            "landmarks_provided",
            pa.list_(pa.float32(), 136),
            "the dataset's own 68 (x, y) landmarks (CK+, AffectNet), original-image coordinates, flattened",
        ),
        _f("bbox", pa.list_(pa.int32(), 4), "face box in the original image: left, top, right, bottom", False),
        _f("detector", pa.string(), "hog / cnn / given (dataset box) / precropped (whole frame)", False),
        _f("det_score", pa.float32(), "detector confidence (null for given / pre-cropped boxes)"),
        _f("n_faces", pa.int16(), "faces found in the image (the largest is kept)", False),
        _f("face_size", pa.float32(), "face box width in original pixels", False),
        _f("eye_distance", pa.float32(), "inter-ocular distance in original pixels"),
        _f("roll_deg", pa.float32(), "in-plane rotation of the eye line, degrees"),
        _f("yaw", pa.float32(), "yaw estimate from landmark asymmetry, -1 (facing image left) .. 1"),
        _f("sharpness", pa.float32(), "variance of the Laplacian of the aligned face", False),
        _f("brightness", pa.float32(), "mean grey level of the aligned face, 0..255", False),
        _f("contrast", pa.float32(), "standard deviation of the aligned face's grey levels", False),
        _f("provided_landmarks_nme", pa.float32(), "mean distance of our landmarks to the dataset's, / eye distance"),
        _f("valence", pa.float32(), "valence annotation (AffectNet), -1..1"),
        _f("arousal", pa.float32(), "arousal annotation (AffectNet), -1..1"),
        _f(
            "label_votes",
            pa.list_(pa.float32()),
            "FER+ vote distribution over the 8 classes of labels.CANONICAL, in that order (soft labels)",
        ),
        _f(
            "embedding",
            pa.list_(pa.float32(), 128),
            "dlib's 128-d face descriptor of the original face (fer_data.faces.embed; faces.embeddings), aligned rows",
        ),
        _f("orig_width", pa.int32(), "original image width", False),
        _f("orig_height", pa.int32(), "original image height", False),
        _f("raw_sha256", pa.string(), "sha256 of the raw input (file bytes, CSV pixel field, or frame pixels)", False),
        _f("pipeline_version", pa.string(), "fer-data version that wrote the row", False),
    ],
    metadata={"fer_data.schema_version": SCHEMA_VERSION, "fer_data.version": __version__},
)

REJECTS = pa.schema(
    [
        _f("source", pa.string(), "dataset source name", False),
        _f("locator", pa.string(), "file path or CSV file and line of the rejected input", False),
        _f("reason", pa.string(), "short reason code (no_face, wrong_pixel_count, ...)", False),
        _f("detail", pa.string(), "human-readable explanation"),
    ],
    metadata={"fer_data.schema_version": SCHEMA_VERSION, "fer_data.version": __version__},
)


def describe(schema: pa.Schema = CURATED) -> str:
    """Plain-text schema documentation (column, type, meaning)."""
    width = max(len(f.name) for f in schema)
    lines = []
    for f in schema:
        doc = (f.metadata or {}).get(b"doc", b"").decode()
        null = "" if f.nullable else " (required)"
        lines.append(f"{f.name:<{width}}  {f.type!s:<26} {doc}{null}")
    return "\n".join(lines)
