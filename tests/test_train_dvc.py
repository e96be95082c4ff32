"""The DVC `train` stage and the training plots, in a scratch repository whose corpus is a given folder.

The stage is taken from the project's dvc.yaml as written (with the top-level `plots:`); the corpus
upstream of it is a prepared folder (tests/train_corpus.py) instead of the corpus stage's output, so
this checks the train stage alone: it runs through `fer-data flow train`, its metrics and plots show
in `dvc metrics show` / `dvc plots show`, a second repro does nothing, and only params that change the
model make it stale.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from train_corpus import demo_corpus

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{' '.join(cmd)} exited {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api):
    root = tmp_path_factory.mktemp("dvc-train")
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    (root / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"train": pipeline["stages"]["train"]}, "plots": pipeline["plots"]})
    )
    for package in ("fer_data", "pipelines", "train"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"].update(model="baseline", epochs=2, batch_size=16, lr=0.01, cache_dir=str(root / "cache"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    demo_corpus(root / "data" / "corpus")
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    (root / ".gitignore").write_text("cache/\n")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_API_URL"] = prefect_api
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], root, env)
    _run(dvc + ["init", "-q"], root, env)
    _run(dvc + ["config", "core.analytics", "false"], root, env)
    out = _run(dvc + ["repro"], root, env)
    return root, env, dvc, out


def test_train_stage_runs_then_is_up_to_date(project):
    root, env, dvc, out = project
    assert "Running stage 'train'" in out
    assert (root / "data/train/model.pt").is_file()
    assert "up to date" in _run(dvc + ["repro"], root, env)


def test_metrics_and_plots_show_the_training(project):
    root, env, dvc, _ = project
    metrics = json.loads(_run(dvc + ["metrics", "show", "--json"], root, env))
    trained = next(iter(metrics.values()))["data"]["data/train/metrics.json"]["data"]
    assert {"accuracy", "macro_f1", "per_class", "by_source"} <= set(trained["test"])
    plots = json.loads(_run(dvc + ["plots", "show", "--json"], root, env))["data"]
    assert len(plots["Confusion matrix (test)"][0]["content"]["data"]["values"]) == trained["test"]["rows"]
    curve = plots["Training loss"][0]["content"]["data"]["values"]
    assert {v["field"] for v in curve} == {"train_loss", "val_loss"} and len(curve) == 2 * trained["epochs_run"]
    assert plots["data/train/plots/confusion_test.png"][0]["type"] == "image"


def test_only_params_that_change_the_model_make_the_stage_stale(project):
    root, env, dvc, _ = project
    before = (root / "params.yaml").read_text()
    for key, value, stale in (("workers", 2, False), ("cache_dir", str(root / "other"), False), ("lr", 0.02, True)):
        params = yaml.safe_load(before)
        params["train"][key] = value
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        changed = json.loads(_run(dvc + ["status", "--json"], root, env))
        assert ("train" in changed) == stale, (key, changed)
    (root / "params.yaml").write_text(before)
