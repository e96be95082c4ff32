"""Synthetic curated tables for the corpus tests: real faces (scikit-image's LFW crops), planted decisions.

Rows are written straight in the curated schema (no face detection), so the corpus logic is
tested in seconds: a planted copy of a face under the transformations copies go through, and
planted embeddings (one vector per person, small noise per photo) for identities.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fer_data import schema
from fer_data.demo import DemoFaces

SIZE = 48
CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
#: Distance between two photos of one person in the planted embeddings (dlib: same person < 0.6).
SAME_PERSON = 0.25

_FACES = DemoFaces()


def face(i: int) -> np.ndarray:
    return _FACES.face(i, SIZE)


def copy_of(img: np.ndarray) -> np.ndarray:
    """What a copy of a face goes through: rescaled, JPEG re-encoded, brighter, mirrored."""
    small = cv2.resize(img, (36, 36), interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    ok, jpeg = cv2.imencode(".jpg", back, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
    brighter = np.clip(decoded.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(brighter[:, ::-1])


def person_vector(person: int) -> np.ndarray:
    """A unit-free 128-d descriptor per person; people are about 1.0 apart (dlib's scale)."""
    v = np.random.default_rng(1000 + person).normal(size=128)
    return (v / np.linalg.norm(v) * 0.7).astype(np.float32)


def photo_vector(person: int, photo: int) -> np.ndarray:
    noise = np.random.default_rng(5000 + 97 * person + photo).normal(size=128)
    return person_vector(person) + (noise / np.linalg.norm(noise) * SAME_PERSON / np.sqrt(2)).astype(np.float32)


def row(
    source: str,
    locator: str,
    img: np.ndarray,
    label: str,
    *,
    subject: str | None = None,
    split: str | None = None,
    embedding: np.ndarray | None = None,
    face_size: float = 100.0,
) -> dict:
    sample_id = hashlib.sha1(f"{source}\0{locator}".encode()).hexdigest()[:16]
    return {
        "sample_id": sample_id,
        "source": source,
        "subject_id": subject,
        "locator": locator,
        "split": split,
        "label_native": label,
        "label": label,
        "label_index": CLASSES.index(label),
        "image": img.tobytes(),
        "width": SIZE,
        "height": SIZE,
        "aligned": True,
        "bbox": [0, 0, SIZE, SIZE],
        "detector": "precropped",
        "n_faces": 1,
        "face_size": face_size,
        "sharpness": float(cv2.Laplacian(img, cv2.CV_64F).var()),
        "brightness": float(img.mean()),
        "contrast": float(img.std()),
        "orig_width": SIZE,
        "orig_height": SIZE,
        "raw_sha256": hashlib.sha256(img.tobytes() + locator.encode()).hexdigest(),
        "pipeline_version": "test",
        "embedding": None if embedding is None else [float(x) for x in embedding],
    }


def write_table(folder: Path, source: str, rows: list[dict], with_embedding: bool = True) -> Path:
    """A `fer-data curate`-shaped output folder holding ROWS."""
    fields = list(schema.CURATED)
    if "embedding" not in schema.CURATED.names and with_embedding:
        fields.append(pa.field("embedding", pa.list_(pa.float32(), 128)))
    table_schema = pa.schema(fields if with_embedding else [f for f in fields if f.name != "embedding"])
    data = [{k: v for k, v in r.items() if k in table_schema.names} for r in rows]
    part = folder / "curated.parquet" / "part-00000.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(data, schema=table_schema), part)
    (folder / "metrics.json").write_text(json.dumps({"source": source, "read": len(rows), "curated": len(rows)}))
    return folder


def labelled(i: int) -> str:
    return CLASSES[i % len(CLASSES)]
