"""Drift test scenario built from the embedded sample faces (fer_data.demo): a reference corpus and batches.

The population is "one of the 100 LFW faces, placed with a random jitter": the reference holds
every face once, a batch draws faces at random and renders them with its own jitter (so it is
a sample of the same distribution, not a copy). Labels cycle over the classes; the shifted
batch has a strongly different class mix and darker, blurrier images, and nothing else changed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_data.demo import DemoFaces, write_image

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: Darker and blurrier: grey levels x 0.6 (the dark end of an under-exposed phone photo), Gaussian sigma 1.5.
DARKEN = 0.6
BLUR_SIGMA = 1.5
FACE_PX = 180


def draw_faces(n: int, seed: int = 0) -> list[int]:
    """N of the 100 faces, at random without replacement."""
    return sorted(np.random.default_rng(seed).choice(100, n, replace=False).tolist())


def write_tree(root: Path, faces: list[int], labels: list[str], shift: bool = False, seed: int = 1) -> Path:
    """One image per face in root/<class>/face_NNN.png (portraits like the `folder` demo)."""
    demo = DemoFaces(seed)
    for i, label in zip(faces, labels, strict=True):
        img = demo.portrait(i, FACE_PX)
        if shift:
            img = cv2.GaussianBlur(np.clip(img * DARKEN, 0, 255).astype(np.uint8), (0, 0), BLUR_SIGMA)
        write_image(root / label / f"face_{i:03d}.png", img)
    return root


def cycle(n: int, offset: int = 0) -> list[str]:
    return [CLASSES[(k + offset) % len(CLASSES)] for k in range(n)]


def build_reference(tmp: Path) -> Path:
    """Every demo face once, curated and built into a corpus by `fer-data corpus`'s engine: TMP/corpus."""
    from support import single_process

    from fer_data.corpus import build_corpus, table_from_dir
    from fer_data.curate import curate

    write_tree(tmp / "ref", list(range(100)), cycle(100))
    curate("folder", tmp / "ref", tmp / "ref_curated", single_process())
    build_corpus([table_from_dir(tmp / "ref_curated")], tmp / "corpus", {})
    return tmp / "corpus"


def skewed(n: int) -> list[str]:
    """Mostly happy and sad (the production mix of the second seed paper's app), a few neutral."""
    return [("happy", "happy", "sad", "neutral")[k % 4] for k in range(n)]
