"""Class-folder source: demo tree end to end, split detection, clutter, unknown folders, real FER2013 images."""

import logging
from collections import Counter

import pytest
from support import realdata, rows, single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces, write_image
from fer_data.sources import get
from fer_data.sources.base import Sample
from fer_data.sources.folder import ClassFolders

DEMO_PARAMS = {"subject_pattern": r"^(?P<subject>S\d+)_"}


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    get("folder").write_demo(root, DemoFaces())
    return root


@pytest.fixture(scope="module")
def faces():
    return DemoFaces(seed=3)


def by_locator(items):
    return {i.locator: i for i in items}


def test_demo_tree_curates_with_splits_subjects_and_clutter_rejected(demo_root, tmp_path):
    metrics = curate("folder", demo_root, tmp_path / "out", single_process(sources={"folder": DEMO_PARAMS}))
    # 21 class images + the unknown folder's image + the loose image + the fake .jpg; the
    # Thumbs.db, notes.txt and ._ resource fork are not items at all.
    assert metrics["read"] == 24
    assert metrics["rejected_by_reason"]["unknown_label"] == 1
    assert metrics["rejected_by_reason"]["unlabelled"] == 1
    assert metrics["rejected_by_reason"]["unreadable_image"] == 1
    assert metrics["curated"] + metrics["rejected"] == metrics["read"]
    assert metrics["curated"] >= 15  # the demo's real faces are found
    got = rows(tmp_path / "out" / "curated.parquet")
    assert {r["split"] for r in got} == {"train", "test"}
    assert {r["split_original"] for r in got} == {"train", "test"}
    assert {r["subject_id"] for r in got} <= {"S001", "S002", "S003", "S004"}
    assert all(r["subject_id"] for r in got)
    # folder names as written are kept natively, mapped through labels.folder_table
    assert {(r["label_native"], r["label"]) for r in got} <= {
        ("angry", "anger"),
        ("disgust", "disgust"),
        ("fear", "fear"),
        ("happy", "happiness"),
        ("sad", "sadness"),
        ("surprise", "surprise"),
        ("neutral", "neutral"),
    }
    rej = {r["locator"]: r for r in rows(tmp_path / "out" / "rejects.parquet")}
    assert "'confused'" in rej["train/confused/S001_confused_0100.png"]["detail"]
    assert rej["test/S002_loose_0101.png"]["reason"] == "unlabelled"
    assert rej["train/happy/S003_broken_0102.jpg"]["reason"] == "unreadable_image"


def test_obvious_non_images_are_skipped_and_listed_in_debug_log(demo_root, caplog):
    with caplog.at_level(logging.DEBUG, logger="fer_data.sources.folder"):
        keys = list(get("folder")(demo_root).keys())
    assert not [k for k in keys if k.endswith((".txt", ".db")) or "/._" in k]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1
    for name in ("train/happy/Thumbs.db", "train/notes.txt", "train/sad/._S001_sad_0000.png"):
        assert name in skipped[0]


def test_unknown_folder_is_warned_once_and_class_map_fixes_it(demo_root, caplog):
    with caplog.at_level(logging.WARNING, logger="fer_data.sources.folder"):
        items = list(get("folder")(demo_root))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'train/confused'" in warnings[0] and "class_map" in warnings[0]
    assert by_locator(items)["train/confused/S001_confused_0100.png"].reason == "unknown_label"
    mapped = by_locator(get("folder")(demo_root, {"class_map": {"Confused": "neutral"}}))
    sample = mapped["train/confused/S001_confused_0100.png"]
    assert isinstance(sample, Sample) and sample.label == "neutral" and sample.label_native == "confused"


def test_class_map_to_a_non_class_is_a_configuration_error(demo_root):
    with pytest.raises(ValueError, match="class_map"):
        get("folder")(demo_root, {"class_map": {"confused": "bored"}})
    with pytest.raises(ValueError, match="split_dirs"):
        get("folder")(demo_root, {"split_dirs": {"holdout": "later"}})


def test_flat_tree_without_split_level_and_nested_subject_folders(tmp_path, faces):
    write_image(tmp_path / "Happy" / "a.png", faces.portrait(1, 120))
    write_image(tmp_path / "happy_ones" / "b.png", faces.portrait(2, 120))
    write_image(tmp_path / "sad" / "subject7" / "c.bmp", faces.portrait(3, 120))
    items = by_locator(get("folder")(tmp_path))
    assert items["Happy/a.png"].label == "happiness" and items["Happy/a.png"].split is None
    assert items["sad/subject7/c.bmp"].label == "sadness"  # deeper folders keep the class folder's label
    assert items["happy_ones/b.png"].reason == "unknown_label"
    assert all(i.subject_id is None for i in items.values() if isinstance(i, Sample))


def test_non_split_folder_beside_split_folders_is_rejected(tmp_path, faces):
    write_image(tmp_path / "Training" / "fear" / "a.png", faces.portrait(1, 120))
    write_image(tmp_path / "validation" / "fear" / "b.png", faces.portrait(2, 120))
    write_image(tmp_path / "extra" / "fear" / "c.png", faces.portrait(3, 120))
    items = by_locator(get("folder")(tmp_path))
    assert (items["Training/fear/a.png"].split, items["Training/fear/a.png"].split_original) == ("train", "Training")
    assert items["validation/fear/b.png"].split == "val"
    assert items["extra/fear/c.png"].reason == "unexpected_folder"
    assert "'extra'" in items["extra/fear/c.png"].detail


def test_split_detection_can_be_turned_off(tmp_path, faces):
    write_image(tmp_path / "test" / "x.png", faces.portrait(1, 120))
    write_image(tmp_path / "happy" / "y.png", faces.portrait(2, 120))
    on = by_locator(get("folder")(tmp_path))
    assert on["test/x.png"].label is None and on["test/x.png"].split == "test"
    assert on["happy/y.png"].reason == "unexpected_folder"
    off = by_locator(get("folder")(tmp_path, {"split_dirs": {}}))
    assert off["test/x.png"].reason == "unknown_label"
    assert off["happy/y.png"].label == "happiness"


def test_unsupported_files_are_rejected_not_dropped(tmp_path, faces):
    write_image(tmp_path / "sad" / "ok.png", faces.portrait(1, 120))
    (tmp_path / "sad" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (tmp_path / "sad" / "README").write_bytes(b"no suffix")
    (tmp_path / "sad" / "labels.csv").write_text("a,b\n")
    items = by_locator(get("folder")(tmp_path))
    assert set(items) == {"sad/ok.png", "sad/IMG_0001.HEIC", "sad/README"}
    assert items["sad/IMG_0001.HEIC"].reason == "not_an_image"
    assert items["sad/README"].reason == "not_an_image" and "no suffix" in items["sad/README"].detail


def test_subject_pattern_groups(tmp_path, faces):
    write_image(tmp_path / "sad" / "S005_001_00000011.png", faces.portrait(1, 120))
    named = next(iter(get("folder")(tmp_path, {"subject_pattern": r"(?P<subject>S\d{3})_"})))
    first = next(iter(get("folder")(tmp_path, {"subject_pattern": r"_(\d{3})_"})))
    whole = next(iter(get("folder")(tmp_path, {"subject_pattern": r"S\d+"})))
    nomatch = next(iter(get("folder")(tmp_path, {"subject_pattern": r"^X"})))
    assert (named.subject_id, first.subject_id, whole.subject_id, nomatch.subject_id) == ("S005", "001", "S005", None)


def test_precropped_tight_crops_are_kept_whole(tmp_path, faces):
    for i, name in enumerate(("angry", "happy", "neutral")):
        write_image(tmp_path / name / f"{i}.png", faces.face(i, 48))
    params = {"precropped": True}
    items = list(get("folder")(tmp_path, params))
    assert all(isinstance(i, Sample) and i.precropped for i in items)
    metrics = curate("folder", tmp_path, tmp_path.parent / "out-crops", single_process(sources={"folder": params}))
    assert metrics["curated"] == 3
    assert {r["detector"] for r in rows(tmp_path.parent / "out-crops" / "curated.parquet")} == {"precropped"}


def test_real_fer2013_image_folders():
    root = realdata("fer2013", "images")
    src = get("folder")(root, {"precropped": True})
    assert src.split_level
    items = list(src)
    assert all(isinstance(i, Sample) for i in items)
    assert {i.split for i in items} == {"train", "test"}
    assert {i.label for i in items} == {"anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"}
    per_split = Counter(i.split for i in items)
    assert per_split["train"] == sum(1 for p in (root / "train").rglob("*.jpg"))
    assert all(i.label_native in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral") for i in items)


def test_real_fer2013_test_folder_curates(tmp_path):
    root = realdata("fer2013", "images", "test")
    params = {"precropped": True}
    metrics = curate("folder", root, tmp_path / "out", single_process(sources={"folder": params}))
    n_files = sum(1 for p in root.rglob("*.jpg"))
    assert metrics["read"] == n_files
    assert metrics["curated"] == n_files  # pre-cropped: every decodable crop is kept (aligned or not)
    got = rows(tmp_path / "out" / "curated.parquet")
    assert all(r["split"] is None and r["orig_width"] == 48 for r in got)
    assert sum(r["aligned"] for r in got) >= n_files // 2


def test_registry_and_base_class():
    assert get("folder") is ClassFolders
    assert issubclass(get("tfeid"), ClassFolders)  # TFEID reuses the walker
    assert isinstance(ClassFolders.defaults["split_dirs"], dict)
