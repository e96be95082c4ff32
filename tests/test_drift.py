"""Drift checks: a batch from the reference distribution passes, a darker, blurrier batch with another class mix
fails exactly those checks; profiles, Parquet and video batches, a model's predictions, the report in a browser."""

from __future__ import annotations

import json

import cv2
import drift_scenario as sc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fer_data.cli import main
from fer_data.drift import config, stats
from fer_data.drift.profile import Profile
from fer_data.drift.run import check_batch
from fer_data.sources.inbox import Inbox

RAW = {"run": {"workers": 1, "shard_size": 16}}
SHIFTED = {"label_shift", "covariate.brightness", "covariate.contrast", "covariate.sharpness"}
BATCH_FACES = 40


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Reference corpus (its train split: ~80 % of the demo faces) and two batches of 40 faces of the same population."""
    tmp = tmp_path_factory.mktemp("drift")
    sc.build_reference(tmp)
    faces = sc.draw_faces(BATCH_FACES)
    sc.write_tree(tmp / "same", faces, sc.cycle(BATCH_FACES, 3), seed=2)
    sc.write_tree(tmp / "shifted", faces, sc.skewed(BATCH_FACES), shift=True, seed=2)
    return tmp


def verdicts(doc: dict) -> dict[str, str]:
    return {name: c["verdict"] for name, c in doc["checks"].items()}


def test_a_batch_from_the_reference_distribution_passes(scenario):
    doc = check_batch(scenario / "corpus", scenario / "same", scenario / "out_same", RAW)
    assert doc["passed"], doc["failed_checks"]
    assert doc["batch"]["rows"] >= 38 and doc["batch"]["labelled"] == doc["batch"]["rows"]
    embedding = doc["checks"]["embedding_shift"]  # curation filled the embedding column (faces.embeddings)
    assert embedding["verdict"] == "pass" and embedding["n_batch"] == doc["batch"]["rows"]
    written = json.loads((scenario / "out_same" / "drift.json").read_text())
    assert written["verdict"] == "pass" and (scenario / "out_same" / "index.html").stat().st_size > 10_000


def test_a_darker_blurrier_batch_with_another_class_mix_fails_exactly_those_checks(scenario):
    doc = check_batch(scenario / "corpus", scenario / "shifted", scenario / "out_shifted", RAW)
    assert set(doc["failed_checks"]) == SHIFTED
    for name in SHIFTED:
        check = doc["checks"][name]
        assert check["p_adjusted"] < doc["alpha"] and check["distance"] >= check["threshold"]["min_psi"]
    geometry = ("covariate.face_size", "covariate.roll_deg", "covariate.yaw", "face_found_rate")
    assert all(doc["checks"][name]["verdict"] == "pass" for name in geometry)


def test_the_cli_saves_a_profile_and_exits_1_on_drift(scenario, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(RAW))  # JSON is YAML
    runner = CliRunner()
    res = runner.invoke(
        main,
        ["drift", "--profile", str(scenario / "corpus"), "--out", str(tmp_path / "p.npz"), "--params", str(params)],
    )
    assert res.exit_code == 0, res.output
    prof = Profile.load(tmp_path / "p.npz")
    assert prof.rows >= 70 and prof.faces.shape[1:] == (48, 48) and sum(prof.class_counts.values()) == prof.rows
    args = ["drift", "--reference", str(tmp_path / "p.npz"), "--params", str(params)]
    shifted = runner.invoke(main, [*args, "--batch", str(scenario / "shifted"), "--out", str(tmp_path / "a")])
    assert shifted.exit_code == 1 and "fail" in shifted.output
    assert set(json.loads((tmp_path / "a" / "drift.json").read_text())["failed_checks"]) == SHIFTED
    same = runner.invoke(main, [*args, "--batch", str(scenario / "same"), "--out", str(tmp_path / "b")])
    assert same.exit_code == 0, same.output


def test_a_model_s_predicted_classes_shift_with_dark_faces(scenario, tmp_path):
    import torch

    class ByBrightness(torch.nn.Module):
        """Class 3 (happiness) for faces brighter than mid-grey, else class 4 (sadness)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            bright = (x.mean(dim=(1, 2, 3)) > 0.4).float()
            scores = torch.zeros(x.shape[0], 7)
            scores[:, 3] = bright
            scores[:, 4] = 1 - bright
            return scores

    path = tmp_path / "model.pt2"
    example = torch.zeros(4, 1, 48, 48)
    program = torch.export.export(ByBrightness(), (example,), dynamic_shapes=({0: torch.export.Dim("n")},))
    torch.export.save(program, str(path))
    shifted = check_batch(scenario / "corpus", scenario / "shifted", tmp_path / "a", RAW, model=path)
    same = check_batch(scenario / "corpus", scenario / "same", tmp_path / "b", RAW, model=path)
    assert shifted["checks"]["predicted_class_shift"]["verdict"] == "fail"
    assert same["checks"]["predicted_class_shift"]["verdict"] == "pass"


def test_a_parquet_batch_of_encoded_images_goes_through_curation(scenario, tmp_path):
    rows = []
    for path in sorted((scenario / "same").rglob("*.png"))[:12]:
        rows.append({"id": path.name, "image": path.read_bytes(), "label": path.parent.name})
    rows.append({"id": "broken", "image": b"not an image", "label": None})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "batch.parquet")
    doc = check_batch(scenario / "corpus", tmp_path / "batch.parquet", tmp_path / "out", RAW)
    assert doc["batch"]["read"] == 13 and doc["batch"]["rejected_by_reason"].get("unreadable_image") == 1
    assert doc["batch"]["labelled"] == doc["batch"]["rows"] >= 11
    assert doc["checks"]["label_shift"]["verdict"] == "skipped"  # fewer than drift.min_labelled


def test_an_inbox_takes_labels_from_folders_and_csv_and_samples_videos(tmp_path):
    from fer_data.demo import DemoFaces, write_image

    faces = DemoFaces(0)
    write_image(tmp_path / "happy" / "a.png", faces.portrait(0, 120))
    write_image(tmp_path / "b.png", faces.portrait(1, 120))
    write_image(tmp_path / "c.png", faces.portrait(2, 120))
    (tmp_path / "labels.csv").write_text("file,label\nc.png,Angry\n")
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 120), False)
    for k in range(25):
        writer.write(faces.portrait(k % 3, 120))
    writer.release()
    items = {s.locator: s for s in Inbox(tmp_path, {"video_stride": 10})}
    assert items["happy/a.png"].label == "happiness" and items["b.png"].label is None
    assert items["c.png"].label == "anger"
    frames = [s for loc, s in items.items() if loc.startswith("clip.avi#")]
    assert [s.frame_index for s in frames] == [0, 10, 20] and frames[0].pixels.shape[:2] == (120, 120)


def test_params_are_checked_before_any_work(scenario, tmp_path):
    with pytest.raises(ValueError, match=r"^drift\.embedding\.permutatons: unknown key; known: enabled"):
        check_batch(scenario / "corpus", scenario / "same", tmp_path, {"drift": {"embedding": {"permutatons": 5}}})
    with pytest.raises(ValueError, match=r"^drift\.features: \['brightnes'\]"):
        config.parse({"drift": {"features": ["brightnes"]}})
    assert not (tmp_path / "batch").exists()


def test_the_chunked_mmd_equals_the_whole_kernel_matrix_and_detects_a_shift():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 16)), rng.normal(size=(200, 16))
    small = stats.mmd_permutation_test(x, y, 50, chunk_rows=64)
    whole = stats.mmd_permutation_test(x, y, 50, chunk_rows=4096)
    z = np.concatenate([x, y])
    kernel = np.exp(-((z[:, None] - z[None]) ** 2).sum(-1) / (2 * whole.bandwidth**2))
    a = np.r_[np.full(300, 1 / 300), np.full(200, -1 / 200)]
    assert small.mmd2 == pytest.approx(whole.mmd2, rel=1e-4) == pytest.approx(a @ kernel @ a, rel=1e-4)
    assert small.p_value == whole.p_value > 0.05
    assert stats.mmd_permutation_test(x, y + 0.4, 50).p_value < 0.05


def test_holm_and_psi():
    assert stats.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert stats.psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * np.log(1.5))
    edges = stats.quantile_edges(np.arange(100.0), 4)
    assert stats.bin_shares(np.arange(100.0), edges) == pytest.approx([0.25] * 4)


def test_the_report_renders_offline_with_every_image(chromium, scenario, tmp_path):
    from browser import render

    check_batch(scenario / "corpus", scenario / "shifted", tmp_path / "out", RAW)
    shown = render(tmp_path / "out" / "index.html", tmp_path / "shots", binary=chromium)
    shown.assert_offline_complete(min_images=20)  # batch faces of the shifted region + reference faces
    assert "covariate.brightness" in shown.dom and not shown.console
