"""End to end: the project's dvc.yaml + params.yaml in a scratch git repository, two fast sources.

Checks that `dvc repro` runs demo -> curate (Prefect flows) -> validate -> manifest -> corpus, that a
second run reproduces nothing, that a parameter of one source invalidates only that branch and
what follows it (and, with bad data behind it, re-runs only that branch), that metrics and plots
show per-source counts, that a local remote pushes and pulls, and that bad input data fails
validation before the manifest stage, with the reports naming the failed expectation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fer_data import params as params_mod

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("jaffe", "fer2013")

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and res.returncode:
        raise AssertionError(f"{' '.join(cmd)} exited {res.returncode}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def _ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api):
    """A git + DVC repository holding the pipeline files, the code it depends on, and small params."""
    root = tmp_path_factory.mktemp("dvc-project")
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    for package in ("fer_data", "pipelines", "train"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sources"] = {name: params["sources"][name] for name in SOURCES}
    params["run"]["workers"] = 1
    params["orchestration"]["task_runner"] = "thread"  # the process runner has its own tests
    if "embeddings" not in params_mod.DEFAULTS["faces"]:  # curation without descriptors: subject ids only
        params["corpus"]["identities"]["cluster"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the fer-data command
    env["PREFECT_API_URL"] = prefect_api  # every stage reports to the session's test server
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], root, env)
    _run(dvc + ["init", "-q"], root, env)
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")  # dvc init writes its own
    _run(dvc + ["config", "core.analytics", "false"], root, env)
    return root, env, dvc


@pytest.fixture(scope="module")
def reproduced(project):
    """The first `dvc repro` of the project; its stdout."""
    root, env, dvc = project
    return _run(dvc + ["repro"], root, env).stdout


def _set_param(root: Path, source: str, key: str, value) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["sources"][source][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _changed(root: Path, env: dict, dvc: list[str]) -> set[str]:
    return set(json.loads(_run(dvc + ["status", "--json"], root, env).stdout))


def test_repro_runs_every_stage_then_nothing(project, reproduced):
    root, env, dvc = project
    stages = {"demo", "curate@jaffe", "curate@fer2013", "validate", "manifest", "corpus", "train", "label_review"}
    assert _ran(reproduced) == stages, reproduced
    for name in SOURCES:
        metrics = json.loads((root / "data/curated" / name / "metrics.json").read_text())
        assert metrics["source"] == name and metrics["curated"] > 0
    summary = json.loads((root / "reports/validation/summary.json").read_text())
    assert summary["success"] and set(summary["sources"]) == set(SOURCES)
    manifest = json.loads((root / "data/validated/manifest.json").read_text())
    assert set(manifest["sources"]) == set(SOURCES)
    assert (
        manifest["sources"]["jaffe"]["rows"]
        == json.loads((root / "data/curated/jaffe/metrics.json").read_text())["curated"]
    )
    corpus = json.loads((root / "data/corpus/manifest.json").read_text())
    assert set(corpus["sources"]) == set(SOURCES) and sum(s["rows"] for s in corpus["shards"]) > 0
    assert all((root / "data/corpus" / s["path"]).exists() for s in corpus["shards"])
    assert (root / "data/corpus/report/index.html").exists()

    second = _run(dvc + ["repro"], root, env)
    assert _ran(second.stdout) == set() and "up to date" in second.stdout, second.stdout


def test_one_source_param_changes_only_its_branch(project, reproduced):
    root, env, dvc = project
    before = (root / "params.yaml").read_text()
    _set_param(root, "fer2013", "class_map", {"furious": "anger"})
    # curate@fer2013, validate (it reads the list of sources) and corpus (it records the sources);
    # manifest follows once they ran.
    assert _changed(root, env, dvc) == {"curate@fer2013", "validate", "corpus"}
    (root / "params.yaml").write_text(before)
    assert _changed(root, env, dvc) == set()


def test_metrics_plots_and_local_remote(project, reproduced):
    root, env, dvc = project
    metrics = json.loads(_run(dvc + ["metrics", "show", "--json"], root, env).stdout)
    files = next(iter(metrics.values()))["data"]
    jaffe = files["data/curated/jaffe/metrics.json"]["data"]
    assert {"read", "curated", "rejected", "rejected_by_reason"} <= set(jaffe)
    assert files["reports/validation/summary.json"]["data"]["sources"]["fer2013"]["success"] is True
    corpus = files["data/corpus/metrics.json"]["data"]
    assert sum(corpus["rows"].values()) == corpus["rows_kept"] > 0 and set(corpus["class_weights"]) == {
        "train",
        "val",
        "test",
    }

    plots = json.loads(_run(dvc + ["plots", "show", "--json"], root, env).stdout)["data"]
    for name in SOURCES:
        rows = plots[f"data/curated/{name}/class_counts.csv"][0]["content"]["data"]["values"]
        assert {r["label"] for r in rows} >= {"anger", "neutral"}
        assert (
            sum(int(r["count"]) for r in rows)
            == json.loads((root / f"data/curated/{name}/metrics.json").read_text())["curated"]
        )

    trained = files["data/train/metrics.json"]["data"]
    assert {"accuracy", "macro_f1", "per_class", "by_source"} <= set(trained["test"])
    test_rows = json.loads((root / "data/corpus/manifest.json").read_text())["splits"]["test"]["rows"]
    assert len(plots["Confusion matrix (test)"][0]["content"]["data"]["values"]) == test_rows
    assert "data/train/plots/confusion_test.png" in plots

    remote = root.parent / "dvc-remote"
    _run(dvc + ["remote", "add", "-f", "-d", "local", str(remote)], root, env)
    _run(dvc + ["push"], root, env)
    shutil.rmtree(root / "data/curated/jaffe/curated.parquet")
    shutil.rmtree(root / ".dvc/cache")
    _run(dvc + ["pull"], root, env)
    assert list((root / "data/curated/jaffe/curated.parquet").glob("part-*.parquet"))
    assert "up to date" in _run(dvc + ["status"], root, env).stdout


def test_bad_data_fails_validation_and_stops_the_pipeline(project, reproduced):
    """Also the branch rule in action: jaffe's root changes, so jaffe's branch re-runs, fer2013's does not."""
    root, env, dvc = project
    manifest_before = (root / "data/validated/manifest.json").read_text()
    # A separate raw tree (a plain dependency, not the demo stage's output) with unreadable files.
    raw = root / "incoming" / "jaffe"
    shutil.copytree(root / "data/demo/raw/jaffe", raw)
    for i in range(20):
        (raw / f"KA.HA{i}.{900 + i}.tiff").write_bytes(b"not a tiff " * 20)
    _set_param(root, "jaffe", "root", "incoming/jaffe")

    res = _run(dvc + ["repro"], root, env, check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert _ran(res.stdout) == {"curate@jaffe", "validate"}, out  # not fer2013's branch, not the manifest
    assert "jaffe.rejects: expect_column_mean_to_be_between(data_reject)" in out
    assert "reports/validation/index.html" in out
    index = (root / "reports/validation/index.html").read_text()
    assert "FAILED" in index and "data_reject" in index
    assert not re.search(r"<script|<link|src=|url\(", index)  # self-contained: opens offline
    (page,) = (root / "reports/validation/gx/validations/jaffe/rejects").rglob("*.html")
    assert "data_reject" in page.read_text()
    assert (root / "data/validated/manifest.json").read_text() == manifest_before  # not rewritten from failed data
    status = _run(dvc + ["status"], root, env).stdout
    assert "validate" in status and "manifest" in status and "corpus" in status
