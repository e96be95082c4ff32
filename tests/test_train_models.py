"""train.models: shapes from the manifest's size and classes; the five-layer CNN is the paper's 2.4 M parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from train import models, png
from train.metrics import confusion, summarize


@pytest.mark.parametrize(("name", "size"), [("five_layer", 48), ("baseline", 48), ("resnet18", 48), ("resnet18", 112)])
def test_models_map_a_batch_of_faces_to_class_logits(name, size):
    model = models.build(name, 7, size).eval()
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 7)


def test_five_layer_cnn_has_the_papers_parameter_count():
    n = models.parameter_count(models.build("five_layer", 7, 48))
    assert 2.35e6 < n < 2.5e6  # Kim et al.: 2.4 M


def test_metrics_match_hand_counts():
    actual = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0])
    cm = confusion(actual, predicted, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    s = summarize(cm, ["a", "b", "c"])
    assert s["accuracy"] == 0.6
    assert s["per_class"]["b"] == {"precision": pytest.approx(2 / 3, abs=1e-6), "recall": 1.0, "f1": 0.8, "support": 2}
    assert s["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3, abs=1e-6)


def test_png_writer_round_trips_through_pillow(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    png.write_png(tmp_path / "x.png", rgb)
    with Image.open(tmp_path / "x.png") as im:
        assert np.array_equal(np.asarray(im), rgb)


def test_plots_carry_class_names_and_a_legend_in_the_glyph_font(tmp_path):
    img = np.full((20, 200, 3), 255, np.uint8)
    png.text(img, "surprise", 0, 0)
    upper = np.full_like(img, 255)
    png.text(upper, "SURPRISE", 0, 0)
    assert np.array_equal(img, upper) and (img == 0).any()  # every letter has a glyph; case does not matter
    assert all(ch in png.GLYPHS for ch in "abcdefghijklmnopqrstuvwxyz0123456789_:,/".upper())
    cm = np.array([[3, 1], [0, 4]])
    png.confusion_png(cm, tmp_path / "named.png", ["happiness", "neutral"])
    with Image.open(tmp_path / "named.png") as im:
        rows = np.asarray(im)[40:72]  # the first row of cells and its label
    name_from = 6 + png.text_width("0 ")  # where "HAPPINESS" starts, after the index
    ink = (rows[:, name_from : name_from + png.text_width("happiness")] < 100).all(axis=2)
    assert ink.any(axis=0).sum() >= 9 * 3 * png.SCALE * 0.8  # nine letters inked across their width
