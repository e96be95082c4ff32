"""FER+ source: vote rules, the lockstep join with fer2013.csv, label.csv votes, sharding, demo, real sample."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import realdata, rows, single_process

from fer_data import labels
from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import get
from fer_data.sources.base import Reject, Sample
from fer_data.sources.fer2013 import demo_usage
from fer_data.sources.ferplus import VOTE_COLUMNS, demo_votes, majority, plurality, vote_distribution

HEADER = "Usage,Image name," + ",".join(VOTE_COLUMNS)


def pixels(seed: int, count: int = 2304) -> str:
    return " ".join(str((seed * 5 + k) % 256) for k in range(count))


def votes(**counts: float) -> list[float]:
    """Ten votes in fer2013new.csv's column order from keyword counts (NF as nf)."""
    return [float(counts.get(c.lower(), 0)) for c in VOTE_COLUMNS]


def vote_text(**counts: int) -> str:
    return ",".join(str(int(v)) for v in votes(**counts))


def write_pixels(root: Path, usages: list[str], bad_rows: dict[int, str] | None = None) -> None:
    lines = ["emotion,pixels,Usage"] + [f"{i % 7},{pixels(i)},{u}" for i, u in enumerate(usages)]
    for i, text in (bad_rows or {}).items():
        lines[i + 1] = text
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")


def write_votes(root: Path, vote_rows: list[str]) -> None:
    (root / "fer2013new.csv").write_text("\n".join([HEADER] + vote_rows) + "\n")


def outcome(items) -> list[tuple[str, str]]:
    return [(i.locator, i.reason if isinstance(i, Reject) else i.label) for i in items]


def flatten(src, shards):
    return [x for s in shards for x in src.iter_shard(s)]


def same_items(a, b) -> bool:
    if [(type(x), x.locator) for x in a] != [(type(y), y.locator) for y in b]:
        return False
    for x, y in zip(a, b):
        if isinstance(x, Reject):
            if x != y:
                return False
        elif (x.label, x.split, x.extra, x.raw_sha256) != (
            y.label,
            y.split,
            y.extra,
            y.raw_sha256,
        ) or not np.array_equal(x.pixels, y.pixels):
            return False
    return True


# --- vote rules --------------------------------------------------------------------------


def test_majority_follows_fer_plus_rule():
    assert majority(votes(neutral=6, surprise=1, sadness=1, unknown=2)) == 0  # 6 of the 8 kept votes
    assert majority(votes(neutral=4, sadness=1, anger=3, disgust=2)) is None  # 4 of 9 kept: not above half
    assert majority(votes(happiness=5, surprise=5)) is None  # exactly half is not a majority
    assert (
        majority(
            votes(neutral=2, happiness=1, surprise=1, sadness=1, anger=1, disgust=1, fear=1, contempt=1, unknown=1)
        )
        == 0
    )  # single votes are outliers: 2 of 2 kept votes
    assert majority(votes(neutral=1, happiness=1, surprise=1)) is None  # nothing left after dropping single votes
    assert majority(votes(nf=10)) == 9
    assert majority(votes(contempt=6, anger=4)) == 7


def test_plurality_takes_the_most_votes_and_refuses_ties():
    assert plurality(votes(neutral=4, happiness=3, surprise=2, sadness=1)) == 0
    assert plurality(votes(happiness=5, surprise=5)) is None
    assert plurality(votes(unknown=7, neutral=3)) == 8
    assert plurality(votes()) is None


def test_vote_distribution_is_over_the_canonical_order():
    dist = vote_distribution(votes(neutral=6, surprise=1, sadness=1, unknown=2))
    assert labels.CANONICAL == ("neutral", "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
    assert dist == [0.75, 0, 0, 0, 0, 0, 0.125, 0.125]
    assert vote_distribution(votes(contempt=3, happiness=1)) == [0, 0, 0.75, 0, 0, 0.25, 0, 0]
    assert vote_distribution(votes(nf=10)) is None


# --- the join ----------------------------------------------------------------------------


def test_hand_made_rows_join_and_reject(tmp_path):
    write_pixels(tmp_path, ["Training"] * 10, bad_rows={7: f"3,{pixels(7, 2303)},Training"})
    write_votes(
        tmp_path,
        [
            f"Training,fer0000000.png,{vote_text(happiness=8, neutral=2)}",  # 0 happiness
            f"Training,,{vote_text(nf=10)}",  # 1 not a face
            f"Training,fer0000001.png,{vote_text(neutral=4, happiness=3, surprise=2, sadness=1)}",  # 2 plurality only
            f"Training,fer0000002.png,{vote_text(unknown=6, neutral=4)}",  # 3 unknown wins
            "Training,fer0000003.png,4,0,x,0,0,0,0,0,0,0",  # 4 text in votes
            "Training,fer0000004.png,4,0,0,0,0,0,0,0,0,0,0",  # 5 11 vote fields
            f"PublicTest,fer0000005.png,{vote_text(anger=9)}",  # 6 Usage disagrees
            f"Training,fer0000006.png,{vote_text(contempt=7, anger=3)}",  # 7 votes fine, pixels short
            f"Training,fer0000007.png,{vote_text(surprise=10)}",  # 8 surprise
        ],
    )  # 9: no vote row
    items = list(get("ferplus")(tmp_path))
    assert outcome(items) == [
        ("fer2013.csv:2", "happiness"),
        ("fer2013.csv:3", "not_a_face"),
        ("fer2013.csv:4", "no_majority"),
        ("fer2013.csv:5", "not_an_emotion"),
        ("fer2013new.csv:6", "bad_votes"),
        ("fer2013new.csv:7", "bad_votes"),
        ("fer2013.csv:8", "misaligned_rows"),
        ("fer2013.csv:9", "wrong_pixel_count"),
        ("fer2013.csv:10", "surprise"),
        ("fer2013.csv:11", "missing_votes"),
    ]
    first = items[0]
    assert first.label_native == "happiness" and first.split == "train" and first.split_original == "Training"
    assert first.precropped and first.pixels.shape == (48, 48) and first.pixels[0, 1] == 1
    assert first.extra["label_votes"] == [0.2, 0, 0, 0, 0, 0.8, 0, 0]
    assert "'x'" in items[4].detail and "13 fields, expected 12" in items[5].detail
    plural = outcome(get("ferplus")(tmp_path, {"label_mode": "plurality"}))
    assert plural[2] == ("fer2013.csv:4", "neutral") and plural[3] == ("fer2013.csv:5", "not_an_emotion")


def test_longer_vote_file_rejects_the_unmatched_rows(tmp_path):
    write_pixels(tmp_path, ["Training", "PublicTest"])
    write_votes(
        tmp_path,
        [
            f"Training,fer0000000.png,{vote_text(fear=9, sadness=1)}",
            f"PublicTest,fer0000001.png,{vote_text(disgust=9, anger=1)}",
        ]
        + [f"PrivateTest,fer{i:07d}.png,{vote_text(neutral=10)}" for i in range(2, 7)],
    )
    items = list(get("ferplus")(tmp_path))
    assert outcome(items) == [("fer2013.csv:2", "fear"), ("fer2013.csv:3", "disgust")] + [
        (f"fer2013new.csv:{n}", "missing_pixels") for n in range(4, 9)
    ]
    assert items[1].split == "val"
    summary = list(get("ferplus")(tmp_path, {"unmatched_rows": "summary"}))
    assert outcome(summary)[2:] == [("fer2013new.csv:4", "missing_pixels")]
    assert summary[2].detail.startswith("5 row(s) from fer2013new.csv:4 to fer2013new.csv:8")


def test_label_csv_votes_are_found_by_image_name(tmp_path):
    write_pixels(tmp_path, ["Training", "Training", "Training", "PublicTest"])
    write_votes(
        tmp_path,
        [
            f"Training,fer0000000.png,{vote_text(neutral=10)}",
            f"Training,,{vote_text(nf=10)}",
            f"Training,fer0000002.png,{vote_text(neutral=10)}",
            f"PublicTest,fer0000003.png,{vote_text(neutral=10)}",
        ],
    )
    train = tmp_path / "data" / "FER2013Train"
    train.mkdir(parents=True)
    # label.csv's votes differ from fer2013new.csv's (as in the real files): these are used.
    (train / "label.csv").write_text(
        f'fer0000000.png,"(0, 0, 48, 48)",{vote_text(anger=8, neutral=2)}\n'
        f'fer0000009.png,"(0, 0, 48, 48)",{vote_text(fear=10)}\n'
    )
    valid = tmp_path / "data" / "FER2013Valid"
    valid.mkdir()
    (valid / "label.csv").write_text(f"fer0000003.png,{vote_text(happiness=7, sadness=3)}\n")  # no box column
    items = list(get("ferplus")(tmp_path, {"votes": "label_csv"}))
    assert outcome(items) == [
        ("fer2013.csv:2", "anger"),
        ("fer2013.csv:3", "not_a_face"),
        ("fer2013.csv:4", "missing_votes"),
        ("fer2013.csv:5", "happiness"),
        ("data/FER2013Train/label.csv:2", "missing_pixels"),
    ]
    assert items[0].extra["label_votes"] == [0.2, 0.8, 0, 0, 0, 0, 0, 0] and items[0].face_box is None
    assert items[3].split == "val"
    with pytest.raises(FileNotFoundError, match="label_csv"):
        get("ferplus")(tmp_path / "data", {"votes": "label_csv", "fer2013_csv": str(tmp_path / "fer2013.csv")})


def test_a_missing_or_headless_vote_file_is_one_reject(tmp_path):
    write_pixels(tmp_path, ["Training", "Training"])
    src = get("ferplus")(tmp_path)
    assert outcome(src) == [("fer2013new.csv", "missing_label_file")] == outcome(flatten(src, src.shards(1, 2)))
    (tmp_path / "fer2013new.csv").write_text("Usage,Image name,neutral,happiness\nTraining,fer0000000.png,10,0\n")
    items = list(get("ferplus")(tmp_path))
    assert outcome(items) == [("fer2013new.csv:1", "bad_header")] and "lacks" in items[0].detail


def test_configuration_errors_fail_at_once(tmp_path):
    write_pixels(tmp_path, ["Training"])
    write_votes(tmp_path, [f"Training,fer0000000.png,{vote_text(neutral=10)}"])
    with pytest.raises(ValueError, match="label_mode"):
        get("ferplus")(tmp_path, {"label_mode": "soft"})
    with pytest.raises(FileNotFoundError, match="fer2013_csv"):
        get("ferplus")(tmp_path, {"fer2013_csv": "elsewhere/fer2013.csv"})
    with pytest.raises(FileNotFoundError, match="pixels: png"):
        get("ferplus")(tmp_path, {"pixels": "png"})
    with pytest.raises(ValueError, match="pixels: must be"):
        get("ferplus")(tmp_path, {"pixels": "jpg"})


# --- the png layout (FER+'s generate_training_data.py output) ------------------------------------


def png_tree(tmp_path: Path) -> Path:
    """The demo tree without fer2013.csv / fer2013new.csv: only data/FER2013*/ PNGs + label.csv."""
    root = tmp_path / "ferplus"
    get("ferplus").write_demo(root, DemoFaces())
    (root / "fer2013.csv").unlink()
    (root / "fer2013new.csv").unlink()
    return root


def test_png_layout_gives_the_labels_of_the_csv_join(tmp_path):
    both = tmp_path / "both"
    get("ferplus").write_demo(both, DemoFaces())
    joined = [i for i in get("ferplus")(both, {"votes": "label_csv"}) if isinstance(i, Sample)]
    src = get("ferplus")(png_tree(tmp_path))  # auto: no fer2013.csv, PNG folders present
    assert src.layout == "png" and get("ferplus")(both).layout == "fer2013_csv"
    png = list(src)
    assert all(isinstance(i, Sample) or i.reason in ("no_majority", "not_an_emotion") for i in png)
    by_row = {demo_name(int(i.locator.split(":")[1]) - 2): i for i in joined}
    samples = [i for i in png if isinstance(i, Sample)]
    assert len(samples) == len(joined) == 55
    for s in samples:
        _folder, name = s.locator.split("/")[1:]
        twin = by_row[name]
        assert (s.label, s.split, s.split_original, s.extra) == (
            twin.label,
            twin.split,
            twin.split_original,
            twin.extra,
        )
        assert s.path.endswith(s.locator) and s.precropped and s.face_box is None
        assert np.array_equal(np.asarray(Image.open(s.path)), twin.pixels)
    assert same_items(flatten(get("ferplus")(src.root), src.shards(7, 1)), png)
    assert same_items(flatten(get("ferplus")(src.root), src.shards(100, 3)), png)


def test_png_layout_rejects_missing_images_and_bad_votes(tmp_path):
    root = png_tree(tmp_path)
    label = root / "data" / "FER2013Train" / "label.csv"
    lines = label.read_text().splitlines()
    first, second = lines[0].split(",")[0], lines[1].split(",")[0]
    (root / "data" / "FER2013Train" / first).unlink()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",x"
    label.write_text("\n".join(lines) + "\n")
    items = {i.locator: i for i in get("ferplus")(root)}
    assert items[f"data/FER2013Train/{first}"].reason == "missing_image"
    assert items["data/FER2013Train/label.csv:2"].reason == "bad_votes" and f"data/FER2013Train/{second}" not in items
    metrics = curate("ferplus", root, tmp_path / "out", single_process(labels={"target_set": "all8"}))
    assert metrics["curated"] == 53 and metrics["rejected_by_reason"]["missing_image"] == 1
    got = rows(tmp_path / "out" / "curated.parquet")
    assert all(r["locator"].startswith("data/FER2013") and len(r["label_votes"]) == 8 for r in got)


def demo_name(row: int) -> str:
    """The image name write_demo gives data row `row` (non-faces are skipped, as in FER+)."""
    return f"fer{sum(1 for i in range(row) if demo_votes(i)[-1] < 10):07d}.png"


# --- sharding ----------------------------------------------------------------------------


def test_sharded_iteration_equals_plain_iteration(tmp_path):
    get("ferplus").write_demo(tmp_path, DemoFaces())
    text = (tmp_path / "fer2013new.csv").read_text().splitlines()
    # Blank lines in both files, and extra vote rows: records, not lines, are paired.
    text.insert(10, "")
    (tmp_path / "fer2013new.csv").write_text(
        "\n".join(text + [f"PrivateTest,fer9999999.png,{vote_text(fear=10)}"]) + "\n"
    )
    pix = (tmp_path / "fer2013.csv").read_text().splitlines()
    pix.insert(30, "  ")
    (tmp_path / "fer2013.csv").write_text("\n".join(pix) + "\n")
    for params in ({}, {"votes": "label_csv"}, {"label_mode": "plurality"}):
        src = get("ferplus")(tmp_path, params)
        plain = list(src)
        assert len(plain) == 61 and outcome(plain)[-1] == ("fer2013new.csv:63", "missing_pixels")
        for max_items, min_shards in ((7, 1), (1, 1), (100, 4)):
            shards = src.shards(max_items, min_shards)
            assert len(shards) > 1
            assert same_items(flatten(get("ferplus")(tmp_path, params), shards), plain)


# --- demo --------------------------------------------------------------------------------


def test_demo_tree_curates_with_votes(tmp_path):
    root = tmp_path / "ferplus"
    get("ferplus").write_demo(root, DemoFaces())
    metrics = curate("ferplus", root, tmp_path / "out", single_process(labels={"target_set": "all8"}))
    assert metrics["read"] == 60 and metrics["curated"] == 55
    assert metrics["rejected_by_reason"] == {"no_majority": 2, "not_a_face": 2, "not_an_emotion": 1}
    got = rows(tmp_path / "out" / "curated.parquet")
    for r in got:
        i = int(r["locator"].split(":")[1]) - 2
        column = VOTE_COLUMNS[i % 8]
        assert r["label_native"] == column and r["label"] == labels.FERPLUS[column]
        assert r["split_original"] == demo_usage(i, 60)
        raw = demo_votes(i)
        expected = vote_distribution([float(v) for v in raw])
        assert r["label_votes"] == pytest.approx(expected) and sum(r["label_votes"]) == pytest.approx(1)
    assert len({r["label"] for r in got}) == 8
    plural = curate(
        "ferplus",
        root,
        tmp_path / "out2",
        single_process(labels={"target_set": "all8"}, sources={"ferplus": {"label_mode": "plurality"}}),
    )
    assert plural["curated"] == 56 and plural["rejected_by_reason"]["no_majority"] == 1


# --- real data ---------------------------------------------------------------------------


def real_params(**extra) -> dict:
    return {"fer2013_csv": str(realdata("fer2013", "csv_slice", "fer2013.csv")), **extra}


def real_vote_rows(path: Path, n: int) -> list[list[str]]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        return [next(reader) for _ in range(n)]


def test_real_sample_joins_the_slice_row_by_row(tmp_path):
    root = realdata("ferplus")
    src = get("ferplus")(root, real_params())
    items = list(src)
    assert len(items) == 35887  # every vote row: 31 joined, the rest have no pixels in the slice
    head, tail = items[:31], items[31:]
    assert {i.reason for i in tail} == {"missing_pixels"} and tail[-1].locator == "fer2013new.csv:35888"
    assert [i.locator for i in head] == [f"fer2013.csv:{n}" for n in range(2, 33)]
    assert Counter(i.reason if isinstance(i, Reject) else "sample" for i in head) == {
        "sample": 24,
        "no_majority": 5,
        "not_a_face": 2,
    }
    assert {i.locator for i in head if isinstance(i, Reject) and i.reason == "not_a_face"} == {
        "fer2013.csv:19",
        "fer2013.csv:25",
    }  # data rows 17 and 23 have no image name
    for item, row in zip(head, real_vote_rows(root / "fer2013new.csv", 31)):
        if isinstance(item, Sample):  # the votes are the ones on the same data row
            counts = [float(v) for v in row[2:10]]
            by_label = dict(zip((labels.FERPLUS[c] for c in VOTE_COLUMNS[:8]), counts))
            assert item.extra["label_votes"] == pytest.approx([by_label[c] / sum(counts) for c in labels.CANONICAL])
            assert item.split == "train"
    assert (head[1].label, head[1].extra["label_votes"]) == ("neutral", [0.75, 0, 0, 0, 0, 0, 0.125, 0.125])
    assert Counter(i.label for i in head if isinstance(i, Sample)) == {
        "neutral": 8,
        "happiness": 8,
        "surprise": 3,
        "anger": 3,
        "sadness": 1,
        "fear": 1,
    }
    assert same_items(flatten(src, src.shards(4096, 4)), items)


def test_real_sample_with_label_csv_votes(tmp_path):
    root = realdata("ferplus")
    items = list(get("ferplus")(root, real_params(votes="label_csv", unmatched_rows="summary")))
    head = items[:31]
    with open(root / "data" / "FER2013Train" / "label.csv", newline="") as fh:
        label_rows = {r[0]: [float(v) for v in r[2:]] for r in csv.reader(fh)}
    new_rows = real_vote_rows(root / "fer2013new.csv", 31)
    joined = [(item, row[1]) for item, row in zip(head, new_rows) if isinstance(item, Sample)]
    assert len(joined) >= 20
    for item, image in joined:
        counts = label_rows[image][:8]
        by_label = dict(zip((labels.FERPLUS[c] for c in VOTE_COLUMNS[:8]), counts))
        assert item.extra["label_votes"] == pytest.approx([by_label[c] / sum(counts) for c in labels.CANONICAL])
    assert outcome(items[31:]) == [("fer2013new.csv:33", "missing_pixels")]
    assert items[31].detail.startswith("35856 row(s)")


def test_real_sample_curates(tmp_path):
    params = single_process(
        labels={"target_set": "all8"},
        run={"shard_size": 8192},
        sources={"ferplus": real_params(unmatched_rows="summary")},
    )
    metrics = curate("ferplus", realdata("ferplus"), tmp_path / "out", params)
    assert metrics["curated"] == 24
    assert metrics["rejected_by_reason"] == {"missing_pixels": metrics["shards"], "no_majority": 5, "not_a_face": 2}
    got = rows(tmp_path / "out" / "curated.parquet")
    assert all(len(r["label_votes"]) == 8 and abs(sum(r["label_votes"]) - 1) < 1e-5 for r in got)
    assert {r["source"] for r in got} == {"ferplus"} and {r["split"] for r in got} == {"train"}


def test_real_label_csv_with_generated_pngs(tmp_path):
    """FER+'s real label.csv files, with the PNGs generate_training_data.py would write for the
    rows of the fer2013.csv slice: the png layout gives the labels the csv join gives."""
    import shutil

    root = realdata("ferplus")
    joined = list(get("ferplus")(root, real_params(votes="label_csv", unmatched_rows="summary")))[:31]
    names = [row[1] for row in real_vote_rows(root / "fer2013new.csv", 31)]
    pixels = {}
    for item in get("fer2013")(realdata("fer2013", "csv_slice")):
        if isinstance(item, Sample):
            pixels[int(item.locator.split(":")[1]) - 2] = item.pixels
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        shutil.copy(root / "data" / folder / "label.csv", tmp_path / "data" / folder / "label.csv")
    for row, name in enumerate(names):
        if name:
            Image.fromarray(pixels[row]).save(tmp_path / "data" / "FER2013Train" / name)
    png = {i.locator.rsplit("/", 1)[-1]: i for i in get("ferplus")(tmp_path) if isinstance(i, Sample)}
    expected = {name: item for name, item in zip(names, joined) if isinstance(item, Sample)}
    assert len(expected) >= 20 and png.keys() == expected.keys()
    for name, item in expected.items():
        assert (png[name].label, png[name].extra) == (item.label, item.extra)
        assert np.array_equal(np.asarray(Image.open(png[name].path)), item.pixels)


def test_png_layout_reads_every_label_csv_even_a_folder_without_pngs(tmp_path):
    root = png_tree(tmp_path)
    for png in (root / "data" / "FER2013Test").glob("*.png"):
        png.unlink()
    items = list(get("ferplus")(root))
    test_rows = [i for i in items if i.locator.startswith("data/FER2013Test/")]
    assert test_rows and all(isinstance(i, Reject) and i.reason in ("missing_image", "bad_votes") for i in test_rows)
    assert len(test_rows) == len((root / "data" / "FER2013Test" / "label.csv").read_text().splitlines())
