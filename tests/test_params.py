import pytest

from fer_data import params


def test_defaults_and_partial_override(tmp_path):
    p = params.resolve({"align": {"size": 64}})
    assert p.align.size == 64 and p.align.eye_left == (0.30, 0.36)
    assert p.target.name == "fer2013_7"
    f = tmp_path / "p.yaml"
    f.write_text("labels:\n  target_set: basic6\nsources:\n  jaffe:\n    root: /x\n")
    q = params.load(f)
    assert q.target.name == "basic6" and q.source("jaffe") == {"root": "/x"} and q.source("nope") == {}


def test_invalid_values_are_refused():
    with pytest.raises(ValueError):
        params.resolve({"faces": {"precropped_fallback": "maybe"}})
    with pytest.raises(ValueError):
        params.resolve({"align": {"eye_left": [0.7, 0.4], "eye_right": [0.3, 0.4]}})
    with pytest.raises(TypeError):
        params.resolve({"faces": {"not_a_key": 1}})


def test_project_params_file_is_valid():
    from support import REPO

    p = params.load(REPO / "params.yaml")
    assert p.run.worker_count() >= 1
