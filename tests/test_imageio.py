import numpy as np
import pytest
from PIL import Image
from support import realdata

from fer_data.imageio import UnreadableImage, decode_grey, read_grey


def _gradient() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64]
    return ((x * 3 + y) % 256).astype(np.uint8)


def test_palette_tiff_decodes_to_grey_levels_not_indices(tmp_path):
    grey = _gradient()
    path = tmp_path / "p.tiff"
    pal = Image.fromarray(grey).convert("RGB").quantize(colors=64)  # indices unrelated to grey levels
    pal.save(path)
    with Image.open(path) as img:
        assert img.mode == "P"
        indices = np.asarray(img)
    out, digest = read_grey(path)
    assert len(digest) == 64
    assert np.abs(out.astype(int) - grey.astype(int)).mean() < 3  # palette quantisation only
    assert np.abs(indices.astype(int) - grey.astype(int)).mean() > 20  # what a naive read would give


def test_rgba_16bit_and_exif_rotation(tmp_path):
    grey = _gradient()
    rgba = Image.fromarray(np.dstack([grey] * 3 + [np.full_like(grey, 255)]), "RGBA")
    rgba.save(tmp_path / "a.png")
    assert np.array_equal(read_grey(tmp_path / "a.png")[0], grey)
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "b.png")
    assert np.abs(read_grey(tmp_path / "b.png")[0].astype(int) - grey).max() <= 1
    img = Image.fromarray(np.zeros((40, 80), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "c.jpg", exif=exif)
    assert read_grey(tmp_path / "c.jpg")[0].shape == (80, 40)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00truncated"])
def test_unreadable_bytes_raise_a_clear_error(data):
    with pytest.raises(UnreadableImage, match="cannot decode"):
        decode_grey(data)


def test_truncated_jpeg_and_missing_file(tmp_path):
    Image.fromarray(_gradient()).save(tmp_path / "x.jpg", quality=95)
    data = (tmp_path / "x.jpg").read_bytes()
    with pytest.raises(UnreadableImage):
        decode_grey(data[: len(data) // 3])
    with pytest.raises(UnreadableImage, match="cannot read file"):
        read_grey(tmp_path / "missing.png")


def test_real_jaffe_palette_files_match_their_grey_siblings():
    root = realdata("jaffe")
    pal = root / "KA.AN1.39.tiff"  # the one palette file of subject KA
    with Image.open(pal) as img:
        assert img.mode == "P"
        expected = np.asarray(img.convert("RGB"))[..., 0]  # JAFFE palettes are grey ramps
    grey, _ = read_grey(pal)
    assert np.array_equal(grey, expected)
    # same subject, grey-mode file: similar overall brightness (a wrong decode would not be)
    sibling, _ = read_grey(root / "KA.AN2.40.tiff")
    assert abs(float(grey.mean()) - float(sibling.mean())) < 25


def _pil_grey(data: bytes) -> np.ndarray:
    import io

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"))


@pytest.mark.parametrize("fmt", ["TIFF", "PNG"])
@pytest.mark.parametrize("mode", ["L", "P", "RGB", "RGBA"])
def test_fast_tiff_png_path_gives_pil_grey_levels(tmp_path, fmt, mode):
    """TIFF/PNG go through OpenCV for speed; the grey levels must be PIL's, palettes applied."""
    import io

    grey = _gradient()
    img = Image.fromarray(np.dstack([grey, grey[::-1], grey.T]), "RGB")
    img = img.quantize(colors=64) if mode == "P" else img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    data = buf.getvalue()
    assert np.abs(decode_grey(data).astype(int) - _pil_grey(data).astype(int)).max() <= 1


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tiff", ".bmp"])
def test_colour_comes_from_the_same_decode_and_grey_is_unchanged(tmp_path, suffix):
    from fer_data.imageio import decode, read_image

    grey = _gradient()
    rgb = np.dstack([grey, 255 - grey, grey // 2])
    Image.fromarray(rgb).save(tmp_path / f"c{suffix}")
    Image.fromarray(grey).save(tmp_path / f"g{suffix}")
    data = (tmp_path / f"c{suffix}").read_bytes()
    out_grey, out_rgb = decode(data, colour=True)
    assert np.array_equal(out_grey, decode_grey(data)) and decode(data)[1] is None
    assert out_rgb.shape == (64, 64, 3) and out_rgb.dtype == np.uint8
    assert np.abs(out_rgb.astype(int) - rgb).max() <= (40 if suffix == ".jpg" else 0)  # RGB order, not BGR
    g, none, digest = read_image(tmp_path / f"g{suffix}", colour=True)
    assert none is None and g.ndim == 2 and len(digest) == 64  # a grey file has no colour copy
