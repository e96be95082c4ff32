"""pipelines/train_flow.py: the `train` flow and `fer-data flow train` run the same fit and write its files."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from train_corpus import demo_corpus

from fer_data.cli import main

pytestmark = pytest.mark.usefixtures("prefect_api")


def _params(tmp_path, **train) -> str:
    path = tmp_path / "params.yaml"
    block = {
        "model": "baseline",
        "epochs": 1,
        "loss_weights": "sample",
        "batch_size": 32,
        "cache_dir": str(tmp_path / "cache"),
        **train,
    }
    path.write_text(yaml.safe_dump({"train": block}))
    return str(path)


def test_fer_data_flow_train_writes_the_fit_outputs(tmp_path):
    corpus = demo_corpus(tmp_path / "corpus")
    out = tmp_path / "train"
    res = CliRunner().invoke(
        main, ["flow", "train", "--corpus", str(corpus), "--out", str(out), "--params", _params(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads(res.output.strip().splitlines()[-1]) == {s: metrics[s]["accuracy"] for s in ("val", "test")}
    assert (out / "model.pt").is_file() and (out / "plots" / "learning_curve.csv").is_file()


def test_a_bad_train_param_fails_the_command_before_training(tmp_path):
    corpus = demo_corpus(tmp_path / "corpus", rows=60)
    out = tmp_path / "train"
    params = _params(tmp_path, momentum=1.5)
    res = CliRunner().invoke(main, ["flow", "train", "--corpus", str(corpus), "--out", str(out), "--params", params])
    assert res.exit_code == 1
    assert "train.momentum: must be a number in [0, 1) (got 1.5)" in res.output
    assert not out.exists()
