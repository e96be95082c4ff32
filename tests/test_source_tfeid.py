"""TFEID source: file-name codes vs class folders, conflicts, colour portraits end to end."""

import logging

import numpy as np
import pytest
from support import rows, single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces, write_image
from fer_data.sources import get
from fer_data.sources.base import Sample
from fer_data.sources.tfeid import parse_name


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfeid")
    get("tfeid").write_demo(root, DemoFaces())
    return root


def by_locator(items):
    return {i.locator: i for i in items}


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("m01_ag1", ("m01", "ag")),
        ("F12_HG", ("F12", "hg")),
        ("m01_x_pg02", ("m01", "pg")),
        ("m01_ngh", ("m01", "ng")),
        ("ag1", None),  # one token: no subject, so no file-name convention
        ("m01_c1", None),  # contempt: no code in labels.TFEID_CODES, the folder decides
        ("m01_happy", None),
        ("_ag1", None),
    ],
)
def test_parse_name(stem, expected):
    assert parse_name(stem) == expected


def test_demo_tree_items(demo_root):
    items = by_locator(get("tfeid")(demo_root))
    assert len(items) == 16
    samples = [i for i in items.values() if isinstance(i, Sample)]
    coded = [s for s in samples if s.subject_id]
    assert len(coded) == 14 and {s.subject_id for s in coded} == {"m01", "f02"}
    assert {s.label for s in coded} == {"neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise"}
    assert items["surprise/f02_pg1.jpg"].label_native == "pg"
    contempt = items["contempt/f02_c1.jpg"]
    assert (contempt.label, contempt.label_native, contempt.subject_id) == ("contempt", "contempt", None)
    conflict = items["happiness/m01_sg2.jpg"]
    assert conflict.reason == "label_conflict" and "sadness" in conflict.detail and "happiness" in conflict.detail
    assert all(s.expected_face_fraction == 0.45 and not s.precropped for s in samples)


def test_demo_tree_curates_colour_portraits(demo_root, tmp_path):
    metrics = curate("tfeid", demo_root, tmp_path / "out", single_process(labels={"target_set": "fer2013_7"}))
    assert metrics["read"] == 16
    assert metrics["rejected_by_reason"]["label_conflict"] == 1
    assert metrics["rejected_by_reason"]["label_outside_target_set"] == 1  # contempt is not in fer2013_7
    assert metrics["curated"] >= 12
    got = rows(tmp_path / "out" / "curated.parquet")
    assert all((r["orig_width"], r["orig_height"]) == (480, 600) for r in got)
    assert {r["subject_id"] for r in got} == {"m01", "f02"}


def test_demo_files_are_colour_jpegs(demo_root):
    from PIL import Image

    with Image.open(demo_root / "anger" / "m01_ag1.jpg") as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (480, 600))
        rgb = np.asarray(img)
    assert rgb[..., 0].mean() > rgb[..., 2].mean()  # tinted, not grey


def test_coded_names_in_unknown_folders_use_the_code_without_warning(tmp_path, caplog):
    faces = DemoFaces(1)
    write_image(tmp_path / "m03" / "m03_hg1.jpg", faces.portrait(1, 200, 0.45))
    write_image(tmp_path / "m03" / "m03_sg1.jpg", faces.portrait(2, 200, 0.45))
    write_image(tmp_path / "m03" / "portrait.jpg", faces.portrait(3, 200, 0.45))
    write_image(tmp_path / "Fear" / "img001.jpg", faces.portrait(4, 200, 0.45))
    with caplog.at_level(logging.WARNING, logger="fer_data.sources.folder"):
        items = by_locator(get("tfeid")(tmp_path))
    assert items["m03/m03_hg1.jpg"].label == "happiness" and items["m03/m03_hg1.jpg"].subject_id == "m03"
    assert items["m03/m03_sg1.jpg"].label == "sadness"
    assert items["m03/portrait.jpg"].reason == "unknown_label" and "'m03'" in items["m03/portrait.jpg"].detail
    assert items["Fear/img001.jpg"].label == "fear" and items["Fear/img001.jpg"].label_native == "Fear"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 file(s)" in warnings[0]  # only the code-less file needs the folder


def test_class_map_decides_conflicts_too(tmp_path):
    write_image(tmp_path / "smile" / "f09_hg1.jpg", DemoFaces(2).portrait(1, 200, 0.45))
    write_image(tmp_path / "frown" / "f09_hg2.jpg", DemoFaces(2).portrait(2, 200, 0.45))
    items = by_locator(get("tfeid")(tmp_path, {"class_map": {"frown": "sadness"}}))
    assert items["smile/f09_hg1.jpg"].label == "happiness"  # 'smile' is a known happiness folder: agrees
    assert items["frown/f09_hg2.jpg"].reason == "label_conflict"
