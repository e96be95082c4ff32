"""The shared HTML helpers: images round-trip, everything from data is escaped, pages stand alone in a browser."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest

from fer_data.reports import html as H

EVIL = '<script>alert("x")</script>&"\'.jpg'


def _decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    png = np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_UNCHANGED)


def test_img_data_uri_round_trips_grey_and_keeps_rgb_order():
    grey = np.arange(48 * 40, dtype=np.uint32).reshape(40, 48).astype(np.uint8)
    assert np.array_equal(_decode(H.img_data_uri(grey)), grey)
    assert np.array_equal(_decode(H.img_data_uri(grey[:, :, None])), grey)
    red = np.zeros((4, 5, 3), np.uint8)
    red[..., 0] = 255  # RGB red
    back = _decode(H.img_data_uri(red))  # OpenCV decodes to BGR
    assert back.shape == (4, 5, 3) and back[0, 0].tolist() == [0, 0, 255]


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4), np.uint8)]
)
def test_img_data_uri_refuses_what_is_not_an_image(bad):
    with pytest.raises((TypeError, ValueError)):
        H.img_data_uri(bad)


def test_thumbnail_bounds_the_longer_side_and_keeps_small_images():
    big = np.zeros((490, 640), np.uint8)
    assert H.thumbnail(big, 160).shape == (122, 160)
    small = np.zeros((48, 48), np.uint8)
    assert H.thumbnail(small, 160) is small


def test_text_from_data_is_escaped_everywhere():
    face = np.zeros((8, 8), np.uint8)
    parts = [
        H.face_grid([H.Face(face, [EVIL, EVIL], title=EVIL)]),
        H.table([EVIL], [[EVIL]]),
        H.grouped_bars({EVIL: {EVIL: 1}}, title=EVIL, ylabel=EVIL),
        H.histogram({EVIL: [1, 2, 3]}, title=EVIL, xlabel=EVIL),
        H.section(EVIL, EVIL, "body"),
        H.toc([(EVIL, EVIL)]),
        H.page(EVIL, ""),
    ]
    for part in parts:
        assert "<script>" not in part and 'alert("x")' not in part
        assert "&lt;script&gt;" in part


def test_table_inserts_raw_cells_as_they_are():
    out = H.table(["a", "b"], [[H.Raw("<b>x</b>"), 1.234567]], numeric=[1])
    assert "<td><b>x</b></td>" in out and "<td class=num>1.235</td>" in out


def test_draw_landmarks_marks_the_points_in_colour():
    face = np.full((48, 48), 128, np.uint8)
    pts = np.stack([np.linspace(8, 40, 68), np.full(68, 24.0)], axis=1)
    out = H.draw_landmarks(face, pts.ravel(), scale=4)
    assert out.shape == (192, 192, 3)
    colourful = out.max(axis=2).astype(int) - out.min(axis=2) > 60
    assert colourful[24 * 4 + 1, 8 * 4 + 1] and colourful[24 * 4 + 1, 40 * 4 + 1]
    assert not colourful[5, 5]  # far from every point: still the grey face
    with pytest.raises(ValueError, match="68 landmarks"):
        H.draw_landmarks(face, pts[:5])


def test_histogram_copes_with_constant_and_non_finite_values():
    svg = H.histogram({"reference": [1.0, 1.0, float("nan")], "other": []}, bins=5)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "1 non-finite dropped" in svg


def test_grouped_bars_draw_one_bar_per_series_and_category():
    svg = H.grouped_bars({"train": {"anger": 3, "fear": 1}, "test": {"anger": 1}}, ["anger", "fear"])
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 4  # bars carry their value; legend swatches do not
    assert "train / anger: 3" in svg and "test / fear: 0" in svg


def test_a_page_of_every_helper_renders_offline_in_chromium(chromium, tmp_path):
    from browser import render

    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (48, 48), dtype=np.uint8)
    pts = np.stack([np.linspace(5, 43, 68), 24 + 10 * np.sin(np.linspace(0, 6, 68))], axis=1)
    body = (
        H.section("charts", "Charts", H.bar_chart({"anger": 3, "fear": 5}, title="one series"))
        + H.histogram({"reference": rng.normal(0, 1, 500), "other": rng.normal(1, 1, 50)}, title="drift")
        + H.section("faces", "Faces", H.face_grid([H.Face(face, [EVIL]), H.Face(H.draw_landmarks(face, pts), ["lm"])]))
        + H.table(["face"], [[H.Raw(H.img_tag(H.thumbnail(face, 24), "small"))]])
    )
    page = tmp_path / "page.html"
    page.write_text(H.page("all helpers", body))
    shown = render(page, tmp_path / "shots", binary=chromium)
    shown.assert_offline_complete(min_images=3)
    assert shown.screenshot.stat().st_size > 1000 and not shown.console
    assert "alert" not in shown.dom or "&lt;script&gt;" in shown.dom


def test_the_harness_sees_network_requests_and_broken_images(chromium, tmp_path):
    from browser import render

    page = tmp_path / "leaky.html"
    page.write_text(
        '<!doctype html><link rel=stylesheet href="https://cdn.example.invalid/x.css">'
        '<img src="http://example.invalid/face.png"><img src="missing.png">'
    )
    shown = render(page, tmp_path, binary=chromium)
    assert any("cdn.example.invalid" in u for u in shown.network_requests)
    assert any("example.invalid/face.png" in u for u in shown.network_requests)
    assert len(shown.broken_images) == 2  # the remote one and the missing local file
    with pytest.raises(AssertionError, match="requested"):
        shown.assert_offline_complete()
