"""train.fit: a tiny CPU run learns and writes every output; an interrupted run resumes where it stopped."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from train_corpus import demo_corpus

from train import __main__ as cli
from train.fit import evaluate, fit
from train.params import TrainParams, build

OUTPUTS = [
    "metrics.json",
    "confusion_matrix.csv",
    "model.pt",
    "checkpoints/last.pt",
    "plots/learning_curve.csv",
    "plots/predictions_val.csv",
    "plots/predictions_test.csv",
    "plots/confusion_val.png",
    "plots/confusion_test.png",
    "plots/loss.png",
    "plots/accuracy.png",
]


def _params(tmp_path, **kw) -> TrainParams:
    raw = {"batch_size": 32, "lr": 0.01, "epochs": 2, "cache_dir": str(tmp_path / "cache"), **kw}
    return build(TrainParams, raw, "train")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return demo_corpus(tmp_path_factory.mktemp("corpus"))


def test_tiny_run_lowers_the_loss_and_writes_every_metric_file(corpus, tmp_path):
    out = tmp_path / "run"
    metrics = fit(corpus, out, _params(tmp_path, epochs=4, model="five_layer"))
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    curve = list(csv.DictReader((out / "plots/learning_curve.csv").open()))
    assert len(curve) == metrics["epochs_run"] == 4
    assert float(curve[-1]["train_loss"]) < float(curve[0]["train_loss"])
    assert json.loads((out / "metrics.json").read_text()) == metrics
    for split in ("val", "test"):
        m = metrics[split]
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["macro_f1"] <= 1
        assert set(m["per_class"]) == set(json.loads((corpus / "manifest.json").read_text())["classes"])
        assert set(m["by_source"]) == {"jaffe", "ckplus"}
        assert sum(s["rows"] for s in m["by_source"].values()) == m["rows"]
        predictions = list(csv.DictReader((out / f"plots/predictions_{split}.csv").open()))
        assert len(predictions) == m["rows"]
        assert np.isclose(np.mean([p["actual"] == p["predicted"] for p in predictions]), m["accuracy"])
    matrix = list(csv.reader((out / "confusion_matrix.csv").open()))
    assert sum(int(v) for row in matrix[1:] if row[0] == "test" for v in row[2:]) == metrics["test"]["rows"]
    for png in ("loss", "accuracy", "confusion_test"):
        with Image.open(out / f"plots/{png}.png") as im:
            assert im.mode == "RGB" and len(np.unique(np.asarray(im).reshape(-1, 3), axis=0)) > 2  # something drawn
    scores, _, _, _ = evaluate(out / "model.pt", corpus, "test", cache_dir=str(tmp_path / "cache"))
    assert scores["accuracy"] == metrics["test"]["accuracy"]


def test_resume_continues_from_the_saved_epoch_and_step_and_ends_as_an_uninterrupted_run(corpus, tmp_path, caplog):
    params = _params(tmp_path, model="baseline", epochs=2, lr_patience=0)
    straight = fit(corpus, tmp_path / "straight", params)
    out = tmp_path / "resumed"
    per_epoch = 160 // 32  # 160 training rows in the fixture
    assert fit(corpus, out, params, max_steps=per_epoch + 2) is None
    saved = torch.load(out / "checkpoints/last.pt", weights_only=False)["progress"]
    assert (saved["epoch"], saved["step"], saved["global_step"]) == (1, 2, per_epoch + 2)
    with caplog.at_level(logging.INFO, logger="train"):
        resumed = fit(corpus, out, params, resume=True)
    assert "resumed from" in caplog.text and "at epoch 1, batch 2" in caplog.text
    assert resumed["epochs_run"] == 2
    assert resumed["val"] == straight["val"] and resumed["test"] == straight["test"]
    assert resumed["train"]["train_loss"] == straight["train"]["train_loss"]


def test_cli_refuses_bad_params_with_one_line_naming_the_key(corpus, tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  lr: -1\n")
    assert cli.main(["fit", "--corpus", str(corpus), "--out", str(tmp_path / "o"), "--params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: params.yaml: train.lr: must be a number > 0 (got -1)"
    assert not (tmp_path / "o").exists()  # refused before any work
