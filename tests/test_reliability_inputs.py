"""One input, one reject: hostile files end as rejects with a reason, never as an exception or a hang."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_data.imageio import UnreadableImage, decode_grey, header_size, is_image_file, read_grey


def _png(w: int = 32, h: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w), 128, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A few hundred bytes that declare a gigantic PNG (the IHDR is patched; nothing else)."""
    data = bytearray(_png())
    data[16:24] = struct.pack(">II", width, height)
    return bytes(data)


def tiff_bomb() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd : ifd + 2])
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", data[at : at + 4])
        if tag in (256, 257):
            data[at + 8 : at + 12] = struct.pack("<I", 80_000) if kind == 4 else struct.pack("<HH", 60_000, 0)
    return bytes(data)


def jpeg_bomb() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65_000, 65_000)
    return bytes(data)


@pytest.mark.parametrize("make", [png_bomb, tiff_bomb, jpeg_bomb], ids=["png", "tiff", "jpeg"])
def test_decompression_bombs_are_refused_from_the_header(make):
    with pytest.raises(UnreadableImage) as err:
        decode_grey(make())
    assert err.value.reason == "image_too_large" and "faces.max_pixels" in str(err.value)


def test_pixel_cap_is_a_parameter():
    assert decode_grey(_png(64, 64), max_pixels=64 * 64).shape == (64, 64)
    with pytest.raises(UnreadableImage, match="above the cap of 4095"):
        decode_grey(_png(64, 64), max_pixels=64 * 64 - 1)


def test_header_size_reads_png_and_tiff_without_decoding():
    assert header_size(_png(40, 24)) == (40, 24)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((24, 40), np.uint8)).save(buf, "TIFF")
    assert header_size(buf.getvalue()) == (40, 24)
    assert header_size(b"II*\x00\xff\xff\xff\xff") is None  # IFD offset past the end: PIL's path decides


def test_fifo_device_and_folder_are_rejected_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    (tmp_path / "dir.jpg").mkdir()
    for name, kind in (("pipe.jpg", "a FIFO"), ("zero.jpg", "a device"), ("dir.jpg", "a folder")):
        with pytest.raises(UnreadableImage) as err:
            read_grey(tmp_path / name)
        assert err.value.reason == "not_a_regular_file" and kind in str(err.value)
    # a listing offers them for reading (so they become rejects), but not folders
    assert is_image_file(fifo) and is_image_file(tmp_path / "zero.jpg") and not is_image_file(tmp_path / "dir.jpg")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 4096,
        bytes(range(256)) * 16,
        b"\x89PNG\r\n\x1a\n" + b"\xff" * 100,
        b"II*\x00" + b"\x08\x00\x00\x00" + b"\xff\xff" + b"\x00" * 40,
        b"GIF89a" + b"\xff" * 20,
        b"BM" + b"\x00" * 60,
    ],
)
def test_garbage_bytes_become_unreadable_with_a_stable_detail(data):
    with pytest.raises(UnreadableImage) as err:
        decode_grey(data)
    assert err.value.reason == "unreadable_image"
    assert " at 0x" not in str(err.value)  # no memory address: details are the same bytes on every run


def test_truncated_png_and_jpeg(tmp_path):
    y, x = np.mgrid[0:64, 0:64]
    img = Image.fromarray(((x * 3 + y) % 256).astype(np.uint8))
    for fmt in ("PNG", "JPEG", "TIFF"):
        buf = io.BytesIO()
        img.save(buf, fmt)
        with pytest.raises(UnreadableImage):
            decode_grey(buf.getvalue()[: len(buf.getvalue()) // 3])


def test_uppercase_extensions_are_images(tmp_path):
    for name in ("A.JPG", "b.Png", "c.TIFF", "d.jpeg"):
        (tmp_path / name).write_bytes(_png())
        assert is_image_file(tmp_path / name)
    (tmp_path / "._x.jpg").write_bytes(b"resource fork")
    assert not is_image_file(tmp_path / "._x.jpg")


# ---------------------------------------------------------------- end to end, on real data and on demo data


def _plant_hostile_files(root: Path, outside: Path, good: Path) -> dict[str, str]:
    """Hostile files under JAFFE-valid names in ROOT; returns {locator: expected reason}."""
    (root / "KA.HA4.900.tiff").write_bytes(tiff_bomb())
    os.mkfifo(root / "KA.SA4.901.tiff")
    (root / "KA.SU4.902.tiff").write_bytes(bytes(range(256)) * 8)
    outside.write_bytes(good.read_bytes())
    (root / "KA.NE4.903.tiff").symlink_to(outside)
    (root / "KA.DI4.904.tiff").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    (root / "KA.FE4.905.tiff").symlink_to("/dev/zero")
    return {
        "KA.HA4.900.tiff": "image_too_large",
        "KA.SA4.901.tiff": "not_a_regular_file",
        "KA.SU4.902.tiff": "unreadable_image",
        "KA.NE4.903.tiff": "outside_root",
        "KA.DI4.904.tiff": "unreadable_image",
        "KA.FE4.905.tiff": "outside_root",  # a device through a link out of the root: never opened
    }


def _curate_both_ways(tree: Path, tmp_path: Path) -> tuple[set[str], dict[str, str]]:
    """Curate TREE with 1 and 2 workers; the two outputs must be the same bytes. (curated, rejects)."""
    from support import single_process
    from test_reliability_output import output_bytes

    from fer_data.curate import curate

    curate("jaffe", tree, tmp_path / "one", single_process())
    curate("jaffe", tree, tmp_path / "two", single_process(run={"workers": 2}))
    assert output_bytes(tmp_path / "one") == output_bytes(tmp_path / "two")
    import pyarrow.parquet as pq

    curated = set(pq.read_table(tmp_path / "one" / "curated.parquet").column("locator").to_pylist())
    rejects = {r["locator"]: r["reason"] for r in pq.read_table(tmp_path / "one" / "rejects.parquet").to_pylist()}
    return curated, rejects


def test_hostile_files_among_real_jaffe_are_rejects_and_every_real_face_is_curated(tmp_path):
    from support import realdata

    real = realdata("jaffe")
    tree = tmp_path / "jaffe"
    tree.mkdir()
    for path in real.glob("*.tiff"):
        (tree / path.name).write_bytes(path.read_bytes())
    expected = _plant_hostile_files(tree, tmp_path / "outside.tiff", next(real.glob("*.tiff")))
    upper = sorted(real.glob("KL.*.tiff"))[0]
    (tree / upper.name).rename(tree / upper.name.replace(".tiff", ".TIFF"))  # extensions in any case
    curated, rejects = _curate_both_ways(tree, tmp_path)
    assert {loc: rejects.get(loc) for loc in expected} == expected
    assert len(curated) == len(list(real.glob("*.tiff"))) and upper.name.replace(".tiff", ".TIFF") in curated


def test_hostile_files_among_demo_jaffe(tmp_path):
    import pyarrow.parquet as pq
    from support import single_process

    from fer_data.curate import curate
    from fer_data.demo import DemoFaces
    from fer_data.sources import get

    tree = tmp_path / "jaffe"
    get("jaffe").write_demo(tree, DemoFaces())
    curate("jaffe", tree, tmp_path / "clean", single_process())
    before = set(pq.read_table(tmp_path / "clean" / "curated.parquet").column("locator").to_pylist())
    expected = _plant_hostile_files(tree, tmp_path / "outside.tiff", tree / sorted(before)[0])
    curated, rejects = _curate_both_ways(tree, tmp_path)
    assert {loc: rejects.get(loc) for loc in expected} == expected and curated == before


def test_an_unforeseen_error_costs_one_key_or_one_image_not_the_run(tmp_path, monkeypatch, caplog):
    """A parser or detector bug on one hostile input: that input is an `unexpected_error` reject, logged."""
    import pyarrow.parquet as pq
    from support import single_process

    import fer_data.faces.process as proc
    from fer_data.curate import curate
    from fer_data.demo import DemoFaces
    from fer_data.sources import get

    tree = tmp_path / "jaffe"
    get("jaffe").write_demo(tree, DemoFaces())
    cls = get("jaffe")
    real_items, real_face = cls.items, proc._face

    def items(self, key):
        if key.startswith("KL.AN1"):
            raise IndexError("a parser bug")
        yield from real_items(self, key)

    def face(sample, grey, params):
        if sample.locator.startswith("KM.HA1"):
            raise ZeroDivisionError("a detector bug")
        return real_face(sample, grey, params)

    monkeypatch.setattr(cls, "items", items)
    monkeypatch.setattr(proc, "_face", face)
    metrics = curate("jaffe", tree, tmp_path / "o", single_process())
    rejects = {r["locator"]: r for r in pq.read_table(tmp_path / "o" / "rejects.parquet").to_pylist()}
    bad = {loc: r["detail"] for loc, r in rejects.items() if r["reason"] == "unexpected_error"}
    assert len(bad) == 2 and sorted(bad) == sorted(
        p.name for p in tree.glob("K[LM].*") if p.name.startswith(("KL.AN1", "KM.HA1"))
    )
    assert all(d.startswith(("IndexError: a parser bug", "ZeroDivisionError: a detector bug")) for d in bad.values())
    assert metrics["curated"] > 30 and "raised" in caplog.text
