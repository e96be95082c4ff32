from collections import Counter

from support import realdata, rows, single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import get
from fer_data.sources.base import Reject, Sample


def test_real_jaffe_counts_per_expression_and_subject(tmp_path):
    root = realdata("jaffe")
    items = list(get("jaffe")(root))
    assert all(isinstance(i, Sample) for i in items)  # the README is not a .tiff: not listed
    assert Counter(i.subject_id for i in items) == {"KA": 23, "KL": 22, "KM": 22}
    assert Counter(i.label_native for i in items) == {"AN": 9, "DI": 9, "FE": 10, "HA": 11, "NE": 9, "SA": 10, "SU": 9}
    metrics = curate("jaffe", root, tmp_path / "out", single_process(labels={"target_set": "all8"}))
    assert metrics["read"] == 67 and metrics["curated"] == 67 and metrics["rejected"] == 0
    got = rows(tmp_path / "out" / "curated.parquet")
    assert Counter(r["label"] for r in got) == {
        "anger": 9,
        "disgust": 9,
        "fear": 10,
        "happiness": 11,
        "neutral": 9,
        "sadness": 10,
        "surprise": 9,
    }
    assert {r["subject_id"] for r in got} == {"KA", "KL", "KM"}
    assert all(r["width"] == r["height"] == 48 and len(r["image"]) == 48 * 48 for r in got)


def test_bad_names_and_codes_are_rejected(tmp_path):
    DemoFacesTree = tmp_path / "jaffe"
    get("jaffe").write_demo(DemoFacesTree, DemoFaces())
    first = sorted(DemoFacesTree.glob("*.tiff"))[0]
    (DemoFacesTree / "KA.XX1.99.tiff").write_bytes(first.read_bytes())
    (DemoFacesTree / "holiday.tiff").write_bytes(first.read_bytes())
    (DemoFacesTree / "KA.HA3.98.tiff").write_bytes(b"II*\x00truncated")
    metrics = curate("jaffe", DemoFacesTree, tmp_path / "out", single_process())
    rej = {r["locator"]: r for r in rows(tmp_path / "out" / "rejects.parquet")}
    assert rej["KA.XX1.99.tiff"]["reason"] == "unknown_label"
    assert rej["holiday.tiff"]["reason"] == "unparseable_name"
    assert rej["KA.HA3.98.tiff"]["reason"] == "unreadable_image"
    assert metrics["read"] == 42 + 3
    assert metrics["curated"] + metrics["rejected"] == metrics["read"]
    assert metrics["curated"] >= 35  # the demo's real faces are found


def test_demo_tree_has_native_names_and_palette_files(tmp_path):
    from PIL import Image

    get("jaffe").write_demo(tmp_path, DemoFaces())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 42 and "KA.AN1.1.tiff" in names
    modes = Counter(Image.open(tmp_path / n).mode for n in names)
    assert modes == {"L": 28, "P": 14}
    items = list(get("jaffe")(tmp_path))
    assert not [i for i in items if isinstance(i, Reject)]
