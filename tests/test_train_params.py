"""train.params: the `train:` block of params.yaml, checked with one-line messages naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.params import Augment, ParamsError, TrainParams, build, load

REPO = Path(__file__).resolve().parents[1]


def test_the_project_params_are_valid_and_keep_the_issue_defaults():
    p = load(REPO / "params.yaml")
    assert (p.lr, p.momentum, p.batch_size, p.weight_decay) == (0.1, 0.9, 128, 1e-4)
    assert p.model == "five_layer" and p.augment == Augment()


def test_defaults_without_a_file_or_block(tmp_path):
    assert load(tmp_path / "missing.yaml") == TrainParams()
    (tmp_path / "p.yaml").write_text("labels: {target_set: fer2013_7}\n")
    assert load(tmp_path / "p.yaml") == TrainParams()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"lr": -1}, "params.yaml: train.lr: must be a number > 0 (got -1)"),
        ({"lr": "fast"}, "params.yaml: train.lr: must be a number (got 'fast')"),
        ({"epochs": 2.5}, "params.yaml: train.epochs: must be an integer (got 2.5)"),
        ({"epochs": True}, "params.yaml: train.epochs: must be an integer (got True)"),
        ({"amp": 1}, "params.yaml: train.amp: must be true or false (got 1)"),
        ({"model": "vgg"}, "params.yaml: train.model: must be one of five_layer | baseline | resnet18 (got 'vgg')"),
        (
            {"augment": {"rotate_deg": 90}},
            "params.yaml: train.augment.rotate_deg: must be a number in [0, 45] (got 90)",
        ),
        ({"augment": 3}, "params.yaml: train.augment: must be a mapping (got 3)"),
        ({"cache_dir": 3}, "params.yaml: train.cache_dir: must be str or null (got 3)"),
    ],
)
def test_bad_values_are_refused_naming_the_key(raw, message):
    with pytest.raises(ParamsError) as err:
        build(TrainParams, raw, "train")
    assert str(err.value) == message


def test_unknown_keys_are_refused_not_ignored():
    with pytest.raises(ParamsError, match=r"^params.yaml: train.learning_rate: unknown key \(known: model, epochs"):
        build(TrainParams, {"learning_rate": 0.1}, "train")
    with pytest.raises(ParamsError, match=r"train.augment.blur: unknown key"):
        build(TrainParams, {"augment": {"blur": 1}}, "train")


def test_integers_are_numbers_and_nested_blocks_merge_over_defaults():
    p = build(TrainParams, {"lr": 1, "augment": {"flip": False}, "cache_dir": None}, "train")
    assert p.lr == 1.0 and isinstance(p.lr, float)
    assert p.augment == Augment(flip=False)
