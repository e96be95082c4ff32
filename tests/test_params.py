"""params.yaml: defaults, and every bad file refused before any work in one line naming the key path."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from support import REPO

from fer_data import params
from fer_data.cli import main


def test_defaults_and_partial_override(tmp_path):
    p = params.resolve({"align": {"size": 64}})
    assert p.align.size == 64 and p.align.eye_left == (0.30, 0.36)
    assert p.target.name == "fer2013_7"
    f = tmp_path / "p.yaml"
    f.write_text("labels:\n  target_set: basic6\nsources:\n  jaffe:\n    root: /x\n")
    q = params.load(f)
    assert q.target.name == "basic6" and q.source("jaffe") == {"root": "/x"} and q.source("nope") == {}


def test_project_params_file_is_valid():
    p = params.load(REPO / "params.yaml")
    assert p.run.worker_count() >= 1


def test_workers_override():
    p = params.resolve({"run": {"workers": 3}})
    assert params.with_workers(p, None) is p and params.with_workers(p, 1).run.workers == 1


#: (params.yaml text, the one line it is refused with, after "FILE: ").
BAD_PARAMS = [
    ("align:\n  size: 0\n", "align.size: must be an integer >= 8 (got 0)"),
    ("align:\n  size: -48\n", "align.size: must be an integer >= 8 (got -48)"),
    ("align:\n  size: '48'\n", "align.size: must be an integer >= 8 (got '48')"),
    ("align:\n  eye_left: [0.3]\n", "align.eye_left: must be two numbers in (0, 1) (got [0.3])"),
    ("align:\n  eye_right: [0.7, 1.4]\n", "align.eye_right: must be two numbers in (0, 1) (got [0.7, 1.4])"),
    ("align:\n  eye_left: left\n", "align.eye_left: must be two numbers in (0, 1) (got 'left')"),
    (
        "align:\n  eye_left: [0.7, 0.4]\n  eye_right: [0.3, 0.4]\n",
        "align.eye_left: must lie left of eye_right (got x 0.7 >= 0.3)",
    ),
    ("align:\n  extra_size: 4\n", "align.extra_size: must be 0 (off) or an integer >= 8 (got 4)"),
    ("align:\n  border: wrap\n", "align.border: must be edge, constant or reflect (got 'wrap')"),
    ("run:\n  shard_size: 0\n", "run.shard_size: must be an integer >= 1 (got 0)"),
    ("run:\n  workers: -1\n", "run.workers: must be an integer >= 0 (0: all cores) (got -1)"),
    ("run:\n  chunksize: 10\n", "run.chunksize: unknown key; known: workers, shard_size, chunk_size"),
    ('labels:\n  keep_unlabelled: "no"\n', "labels.keep_unlabelled: must be true or false (got 'no')"),
    (
        "labels:\n  target_set: fer2013_8\n",
        "labels.target_set: unknown target set 'fer2013_8'; choose one of ['all8', 'basic6', 'fer2013_7'] or list classes",
    ),
    ("faces:\n  detector: mtcnn\n", "faces.detector: must be hog or cnn (got 'mtcnn')"),
    ("faces:\n  max_roll_deg: 120\n", "faces.max_roll_deg: must be a number in (0, 90] (got 120)"),
    (
        "faces:\n  precropped_fallback: maybe\n",
        "faces.precropped_fallback: must be keep_unaligned or reject (got 'maybe')",
    ),
    ("faces:\n  retry_upsampled: 1\n", "faces.retry_upsampled: must be true or false (got 1)"),
    ("labelz:\n  target_set: all8\n", "labelz: unknown block; known: "),
    ("sources:\n  jaffee:\n    root: x\n", "sources.jaffee: unknown source; known: affectnet, affwild2, ckplus, "),
    (
        "sources:\n  jaffe:\n    rot: x\n",
        "sources.jaffe.rot: unknown key; known: root, follow_symlinks_outside_root, expected_face_fraction",
    ),
    (
        "sources:\n  ckplus:\n    peak_frames: -1\n",
        "sources.ckplus.peak_frames: must be a number >= 0 (< 1: a fraction, >= 1: a count) (got -1)",
    ),
    (
        "sources:\n  ferplus:\n    label_mode: soft\n",
        "sources.ferplus.label_mode: must be majority or plurality (got 'soft')",
    ),
    ("sources:\n  affwild2:\n    frame_stride: 0\n", "sources.affwild2.frame_stride: must be an integer >= 1 (got 0)"),
    (
        "sources:\n  folder:\n    split_dirs: {train: training}\n",
        "sources.folder.split_dirs.train: must be 'train', 'val' or 'test' (got 'training')",
    ),
    (
        "sources:\n  folder:\n    precropped: yes please\n",
        "sources.folder.precropped: must be true or false (got 'yes please')",
    ),
    (
        "sources:\n  folder:\n    class_map: {ekel: glee}\n",
        "sources.folder.class_map.ekel: must be 'neutral', 'anger', 'contempt', 'disgust', 'fear', 'happiness', "
        "'sadness', 'surprise' or 'not_an_emotion' (got 'glee')",
    ),
    ("sources:\n  jaffe: [x]\n", "sources.jaffe: must be a mapping of keys (got ['x'])"),
    ("validation:\n  max_reject_rat: 0.1\n", "validation: unknown setting(s) max_reject_rat; known: "),
    ("validation:\n  max_reject_rate: high\n", "validation.max_reject_rate: must be a number (got 'high')"),
    (
        "validation:\n  sources:\n    jaffe: {min_face_found_rate: 1.5}\n",
        "validation.sources.jaffe.min_face_found_rate: must be a number in [0, 1] (got 1.5)",
    ),
    (
        "validation:\n  ranges:\n    contrast: {min: low}\n",
        "validation.ranges.contrast: must be {min, max, mostly} numbers or null (got {'min': 'low'})",
    ),
    (
        "orchestration:\n  task_runner: celery\n",
        "orchestration.task_runner: must be process, dask or thread (got 'celery')",
    ),
    (
        "schedules:\n  nightly:\n    cron: '0 2 * * *'\n    activ: true\n",
        "schedules.nightly.activ: unknown key; known: cron",
    ),
    ("align: 48\n", "align: must be a mapping of keys (got 48)"),
    ("- a list\n", "must be a mapping of blocks (labels, faces, ...), not list"),
    ("align:\n  size: [\n", "not valid YAML (line 3)"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PARAMS, ids=[m.split(":")[0] for _, m in BAD_PARAMS])
def test_bad_params_are_refused_in_one_line(tmp_path, text, message):
    f = tmp_path / "params.yaml"
    f.write_text(text)
    with pytest.raises(params.ParamsError) as info:
        params.load(f)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{f}: {message}"), line


def test_curate_refuses_bad_params_before_any_work(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("align:\n  size: 0\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["curate", "--source", "jaffe", "--root", str(tmp_path), "--out", str(out), "--params", str(f)]
    )
    assert res.exit_code == 1
    assert res.output == f"Error: {f}: align.size: must be an integer >= 8 (got 0)\n"
    assert not out.exists()


def test_flow_command_refuses_bad_params_without_a_traceback(tmp_path):
    """`fer-data flow curate` (what DVC stages run) stops before Prefect starts, with the same one line."""
    f = tmp_path / "params.yaml"
    f.write_text('labels:\n  keep_unlabelled: "no"\n')
    res = subprocess.run(
        [sys.executable, "-m", "fer_data.cli", "flow", "curate", "--source", "jaffe", "--out", str(tmp_path / "o")]
        + ["--params", str(f)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1
    assert res.stderr == f"Error: {f}: labels.keep_unlabelled: must be true or false (got 'no')\n"
    assert "Traceback" not in res.stdout + res.stderr


def test_a_quality_range_can_be_switched_off():
    params.resolve({"validation": {"ranges": {"contrast": None}, "sources": {"jaffe": {"ranges": {"yaw": None}}}}})


def test_owners_that_cannot_be_imported_are_skipped(monkeypatch):
    monkeypatch.setitem(params.BLOCK_OWNERS, "future", "fer_data.not_written_yet:Params")
    params.resolve({"future": {"anything": 1}})  # its owner is not there: not checked
    with pytest.raises(params.ParamsError, match="nobody: unknown block"):
        params.resolve({"nobody": {}})


def test_each_source_documents_its_params():
    from fer_data import sources

    for name in sources.names():
        model = sources.get(name).params_model
        assert "root" in model.model_fields
        for key, field in model.model_fields.items():
            assert field.description, f"sources.{name}.{key} has no description"
