"""The dataset root is a boundary; hostile label files and trees end as rejects, the rows around them curated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support import single_process

from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import get
from fer_data.sources.base import Reject, Sample


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Pristine demo trees of the sources these tests plant into (copied per test)."""
    root = tmp_path_factory.mktemp("demo")
    faces = DemoFaces()
    for name in ("affectnet", "rafdb", "ferplus", "folder"):
        get(name).write_demo(root / name, faces)
    return root


def planted(demo: Path, tmp_path: Path, name: str) -> Path:
    """A copy of NAME's demo tree inside TMP/data (so TMP/outside.* lies outside its root)."""
    root = tmp_path / "data" / name
    shutil.copytree(demo / name, root, symlinks=True)
    shutil.copy(next((demo / "folder").rglob("*.png")), tmp_path / "outside.png")  # a real face, outside
    return root


def run(name: str, root: Path, out: Path, **source_params) -> tuple[set[str], dict[str, str]]:
    """Curate; (curated locators, reject reason by locator). Raises if the run does not finish."""
    curate(name, root, out, single_process(sources={name: source_params}))
    curated = set(pq.read_table(out / "curated.parquet").column("locator").to_pylist())
    rejects = {r["locator"]: r["reason"] for r in pq.read_table(out / "rejects.parquet").to_pylist()}
    every = list(curated) + list(rejects)
    assert not [loc for loc in every if ".." in loc.replace(":", "/").split("/") or loc.startswith("/")]
    return curated, rejects


def test_in_root_resolves_names_inside_and_refuses_the_rest(demo, tmp_path):
    root = planted(demo, tmp_path, "rafdb")
    src = get("rafdb")(root)
    assert src.in_root("a/./b/../c.jpg", base="Image") == ("Image/a/c.jpg", root / "Image/a/c.jpg")
    assert "climbs out" in src.in_root("../../outside.png")
    assert "absolute path" in src.in_root("/etc/passwd") and "absolute path" in src.in_root("C:\\faces\\x.jpg")
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    assert "symbolic link leads outside" in src.in_root("link.png")
    (root / "inner.png").symlink_to(root / "Image")  # a link that stays inside is fine
    assert src.in_root("inner.png")[0] == "inner.png"
    assert get("rafdb")(root, {"follow_symlinks_outside_root": True}).in_root("link.png")[0] == "link.png"


def test_affectnet_rows_naming_paths_outside_the_root_are_rejected(demo, tmp_path):
    root = planted(demo, tmp_path, "affectnet")
    before, _ = run("affectnet", root, tmp_path / "before")
    lists = root / "Manually_Annotated_file_lists" / "training.csv"
    good = lists.read_text().splitlines()[1]
    rest = good.split(",", 1)[1]
    hostile = ["../../../outside.png", "/etc/passwd", "1/../../../../outside.png"]
    (root / "Manually_Annotated_Images" / "1" / "escape.jpg").symlink_to(tmp_path / "outside.png")
    with lists.open("a") as fh:
        for name in [*hostile, "1/escape.jpg"]:
            fh.write(f"{name},{rest}\n")
    curated, rejects = run("affectnet", root, tmp_path / "after")
    assert curated == before  # every valid row around the hostile ones
    n = len(lists.read_text().splitlines())
    planted_rows = {f"Manually_Annotated_file_lists/training.csv:{i}" for i in range(n - 3, n + 1)}
    assert {loc: rejects[loc] for loc in planted_rows} == dict.fromkeys(planted_rows, "outside_root")


def test_rafdb_symlinked_image_leaving_the_root_is_rejected_unless_allowed(demo, tmp_path):
    root = planted(demo, tmp_path, "rafdb")
    before, _ = run("rafdb", root, tmp_path / "before")
    victim = sorted((root / "Image" / "aligned").glob("*.jpg"))[0]
    victim.unlink()
    victim.symlink_to(tmp_path / "outside.png")
    curated, rejects = run("rafdb", root, tmp_path / "after")
    locator = victim.relative_to(root).as_posix()
    assert list(rejects.values()).count("outside_root") == 1 and curated == before - {locator}
    assert next(loc for loc, why in rejects.items() if why == "outside_root").startswith("EmoLabel/")  # the label line
    allowed, _ = run("rafdb", root, tmp_path / "allowed", follow_symlinks_outside_root=True)
    assert locator in allowed


def test_ferplus_png_label_rows_naming_paths_outside_are_rejected(demo, tmp_path):
    root = planted(demo, tmp_path, "ferplus")
    before, _ = run("ferplus", root, tmp_path / "before", pixels="png")
    label = root / "data" / "FER2013Train" / "label.csv"
    rest = label.read_text().splitlines()[0].split(",", 1)[1]
    ending = "" if label.read_bytes().endswith(b"\n") else "\n"
    with label.open("a") as fh:
        fh.write(f"{ending}../../../../outside.png,{rest}\n/etc/hostname,{rest}\n")
    curated, rejects = run("ferplus", root, tmp_path / "after", pixels="png")
    n = len(label.read_text().splitlines())
    assert curated == before
    assert [rejects[f"data/FER2013Train/label.csv:{i}"] for i in (n - 1, n)] == ["outside_root"] * 2


def test_folder_tree_symlinks_leaving_the_root_are_rejected(demo, tmp_path):
    root = planted(demo, tmp_path, "folder")
    before, _ = run("folder", root, tmp_path / "before")
    (root / "train" / "happy" / "S009_escape_0999.png").symlink_to(tmp_path / "outside.png")
    curated, rejects = run("folder", root, tmp_path / "after")
    assert rejects["train/happy/S009_escape_0999.png"] == "outside_root" and curated == before


# ---------------------------------------------------------------- label files naming one image twice


def test_rafdb_duplicate_lines_are_curated_once_and_conflicts_not_at_all(demo, tmp_path):
    root = planted(demo, tmp_path, "rafdb")
    before, _ = run("rafdb", root, tmp_path / "before")
    labels = root / "EmoLabel" / "list_patition_label.txt"
    lines = labels.read_text().splitlines()
    first, second = lines[0].split(), lines[1].split()
    other = "7" if second[1] != "7" else "6"
    labels.write_text("\n".join([*lines, " ".join(first), f"{second[0]} {other}"]) + "\n")
    curated, rejects = run("rafdb", root, tmp_path / "after")
    table = pq.read_table(tmp_path / "after" / "curated.parquet")
    ids = table.column("sample_id").to_pylist()
    assert len(ids) == len(set(ids))  # never curated twice
    dup = f"Image/aligned/{first[0][:-4]}_aligned.jpg"
    conflict = f"Image/aligned/{second[0][:-4]}_aligned.jpg"
    assert dup in curated and rejects[f"{dup}#2"] == "duplicate_entry"
    assert conflict not in curated and rejects[conflict] == rejects[f"{conflict}#2"] == "label_conflict"
    assert curated == before - {conflict}


def test_affectnet_rows_naming_one_file_twice(demo, tmp_path):
    root = planted(demo, tmp_path, "affectnet")
    lists = root / "Manually_Annotated_file_lists" / "training.csv"
    rows = lists.read_text().splitlines()
    with lists.open("a") as fh:
        fh.write(rows[1] + "\n")
    curated, rejects = run("affectnet", root, tmp_path / "after")
    n = len(rows) + 1
    assert rejects[f"Manually_Annotated_file_lists/training.csv:{n}"] == "duplicate_entry"
    assert "Manually_Annotated_file_lists/training.csv:2" in curated


# ---------------------------------------------------------------- not a face, not curated as one


def test_blank_uniform_and_noise_crops_are_not_curated_as_faces(demo, tmp_path):
    import numpy as np
    from PIL import Image

    root = planted(demo, tmp_path, "folder")
    before, _ = run("folder", root, tmp_path / "before", precropped=True)
    rng = np.random.default_rng(9)
    bad = {
        "S010_blank_0001.png": np.zeros((48, 48), np.uint8),
        "S010_grey_0002.png": np.full((48, 48), 128, np.uint8),
        "S010_noise_0003.png": rng.integers(0, 256, (48, 48)).astype(np.uint8),
        "S010_noise_0004.jpg": rng.integers(0, 256, (96, 96)).astype(np.uint8),
    }
    for name, pixels in bad.items():
        Image.fromarray(pixels).save(root / "train" / "happy" / name)
    curated, rejects = run("folder", root, tmp_path / "after", precropped=True)
    assert {rejects[f"train/happy/{name}"] for name in bad} == {"no_face_in_crop"}
    assert curated == before


def test_extensions_match_whatever_their_case(demo, tmp_path):
    jaffe = tmp_path / "jaffe"
    get("jaffe").write_demo(jaffe, DemoFaces())
    before, _ = run("jaffe", jaffe, tmp_path / "before")
    for path in sorted(jaffe.glob("KA.*"))[:3]:
        path.rename(path.with_suffix(".TIFF"))
    root = planted(demo, tmp_path, "folder")
    folder_before, _ = run("folder", root, tmp_path / "folder-before")
    moved = sorted((root / "train" / "happy").glob("*.png"))[0]
    moved.rename(moved.with_suffix(".PNG"))
    after, _ = run("jaffe", jaffe, tmp_path / "after")
    assert len(after) == len(before) and sum(loc.endswith(".TIFF") for loc in after) == 3
    folder_after, _ = run("folder", root, tmp_path / "folder-after")
    assert moved.with_suffix(".PNG").relative_to(root).as_posix() in folder_after
    assert len(folder_after) == len(folder_before)


# ---------------------------------------------------------------- label files with stray CRs or binary bytes


def _nth_newline(data: bytes, n: int) -> int:
    at = -1
    for _ in range(n):
        at = data.index(b"\n", at + 1)
    return at


MUTATIONS = {
    "cr_in_header": lambda d: d.replace(b"\n", b"\r", 1),
    "cr_between_rows": lambda d: d[: _nth_newline(d, 5)] + b"\r" + d[_nth_newline(d, 5) + 1 :],
    "cr_inside_a_field": lambda d: d[: _nth_newline(d, 5) + 5] + b"\r" + d[_nth_newline(d, 5) + 5 :],
    "crlf": lambda d: d.replace(b"\n", b"\r\n"),
    "nul_bytes": lambda d: d[: len(d) // 2] + b"\x00\x00\xff\xfe" + d[len(d) // 2 :],
    "binary_line": lambda d: d + bytes(range(256)) + b"\n",
    "utf16": lambda d: d.decode("latin-1").encode("utf-16"),
}
#: Damage to a file's line structure: it must show as at least one new reject.
STRUCTURAL = ("cr_in_header", "cr_between_rows", "binary_line", "utf16")
LABEL_FILES = {
    "fer2013": "fer2013.csv",
    "rafdb": "EmoLabel/list_patition_label.txt",
    "affectnet": "Manually_Annotated_file_lists/training.csv",
    "ferplus": "fer2013new.csv",
}


@pytest.fixture(scope="module")
def label_demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("labels")
    for name in LABEL_FILES:
        get(name).write_demo(root / name, DemoFaces())
    return root


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("name", sorted(LABEL_FILES))
def test_label_files_with_stray_crs_or_binary_bytes_give_rejects_not_crashes(label_demo, tmp_path, name, mutation):
    root = tmp_path / name
    shutil.copytree(label_demo / name, root)
    path = root / LABEL_FILES[name]
    path.write_bytes(MUTATIONS[mutation](path.read_bytes()))
    src = get(name)(root)
    whole = list(src)  # no exception reaches the run
    sharded = [item for shard in src.shards(4, 4) for item in src.iter_shard(shard)]
    # the shard plan and a plain read agree: no row is lost between shards
    assert [(i.locator, type(i).__name__) for i in sharded] == [(i.locator, type(i).__name__) for i in whole]
    assert whole and all(".." not in i.locator.split("/") for i in whole)
    rejects = {(i.locator, i.reason) for i in whole if not hasattr(i, "label")}
    clean = {(i.locator, i.reason) for i in get(name)(label_demo / name) if not hasattr(i, "label")}
    if mutation == "crlf":  # Windows line ends are not damage
        assert rejects == clean
    elif mutation in STRUCTURAL:  # (a NUL or CR inside a field may land where it does no harm: a CR
        assert rejects - clean, "the damage shows as a reject"  # beside a space in FER2013's pixels)


# ---------------------------------------------------------------- Aff-Wild2 videos that must not be opened


def test_affwild2_fifo_and_escaping_videos_are_rejected_without_opening(tmp_path):
    import os

    from test_source_affwild2 import annotate, level_video

    from fer_data.sources.affwild2 import AffWild2

    root = tmp_path / "aw"
    (root / "videos").mkdir(parents=True)
    os.mkfifo(root / "videos" / "pipe.mp4")  # OpenCV would wait forever for a writer
    level_video(tmp_path / "outside.avi", 10)
    (root / "videos" / "away.avi").symlink_to(tmp_path / "outside.avi")
    level_video(root / "videos" / "fine.avi", 10)
    for name in ("pipe", "away", "fine"):
        annotate(root, name, [0] * 10)
    items = list(AffWild2(root, {"frame_stride": 5}))
    reasons = {i.locator.split("/")[-1]: i.reason for i in items if isinstance(i, Reject)}
    assert reasons == {"pipe.txt": "not_a_regular_file", "away.txt": "outside_root"}
    assert sum(isinstance(i, Sample) for i in items) == 2  # fine.avi's frames 1 and 6
