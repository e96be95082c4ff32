"""The Prefect flows under the session's test server: curate on a process pool, validate, the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from fer_data import curate as engine
from fer_data import params as params_mod
from fer_data.cli import main
from fer_data.demo import write_demo

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    write_demo(out, ["jaffe", "fer2013"])
    return out


def _params(folder: Path, raw: Path, **blocks) -> str:
    doc = {
        "run": {"workers": 1, "shard_size": 8},
        "sources": {"jaffe": {"root": str(raw / "jaffe")}, "fer2013": {"root": str(raw / "fer2013")}},
        "orchestration": {"task_runner": "thread"},
    }
    for key, value in blocks.items():
        doc[key] = {**doc.get(key, {}), **value}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _flow_runs(flow_name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))


@pytest.mark.slow
def test_curate_flow_on_a_process_pool_writes_what_the_engine_writes(raw, tmp_path):
    from pipelines.curate_flow import run_curate

    path = _params(tmp_path, raw, orchestration={"task_runner": "process"})
    metrics = run_curate("jaffe", tmp_path / "flow", params_path=path, workers=2)
    plain = engine.curate("jaffe", raw / "jaffe", tmp_path / "plain", params_mod.load(path))
    assert metrics["shards"] > 2 and metrics["read"] == 42  # 42 files in shards of at most 8
    for key in ("read", "curated", "rejected_by_reason", "curated_by_label"):
        assert metrics[key] == plain[key]
    flow_rows = pq.read_table(tmp_path / "flow" / engine.CURATED).select(["sample_id", "image"]).to_pylist()
    assert flow_rows == pq.read_table(tmp_path / "plain" / engine.CURATED).select(["sample_id", "image"]).to_pylist()
    assert (tmp_path / "flow" / engine.CLASS_COUNTS).read_text().startswith("source,label,count\njaffe,anger,")
    assert not list((tmp_path / "flow").glob(".staging-*"))

    (run,) = [r for r in _flow_runs("curate") if r.parameters.get("out") == str(tmp_path / "flow")]
    assert run.state.is_completed()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run.id])))
        artifacts = {a.key for a in client.read_artifacts() if a.flow_run_id == run.id}
    names = sorted(t.name for t in tasks)
    assert sum(n.startswith("publish") for n in names) == 1 and sum(n.startswith("plan-shards") for n in names) == 1
    assert sum(n.startswith("jaffe-shard-") for n in names) == metrics["shards"]
    assert all(t.state.is_completed() for t in tasks)
    assert {"curate-jaffe", "curate-jaffe-progress"} <= artifacts


def test_a_failing_shard_fails_the_flow_and_leaves_no_partial_output(raw, tmp_path):
    from pipelines.curate_flow import run_curate

    broken = tmp_path / "jaffe"
    broken.mkdir()
    (broken / "KA.AN1.1.tiff").write_bytes((raw / "jaffe" / "KA.AN1.1.tiff").read_bytes())
    path = _params(tmp_path, raw)
    with pytest.MonkeyPatch.context() as mp:

        def explode(*args, **kwargs):
            raise OSError("disk vanished")

        mp.setattr(engine, "run_shard", explode)
        with pytest.raises(OSError, match="disk vanished"):
            run_curate("jaffe", tmp_path / "out", root=str(broken), params_path=path)
    assert not (tmp_path / "out" / engine.CURATED).exists() and not list((tmp_path / "out").glob(".staging-*"))


def test_validate_flow_failure_exits_non_zero_naming_the_expectation(raw, tmp_path):
    path = _params(tmp_path, raw, validation={"sources": {"fer2013": {"min_rows": 10_000}}})
    engine.curate("fer2013", raw / "fer2013", tmp_path / "curated" / "fer2013", params_mod.load(path))
    res = CliRunner().invoke(
        main,
        [
            "flow",
            "validate",
            "--params",
            path,
            "--curated-root",
            str(tmp_path / "curated"),
            "--source",
            "fer2013",
            "--report",
            str(tmp_path / "report"),
        ],
    )
    assert res.exit_code == 1, res.output
    assert "fer2013.curated: expect_table_row_count_to_be_between()" in res.output
    assert str(tmp_path / "report" / "index.html") in res.output
    # read_flow_runs sorts by (random) id: pick this test's run by its parameters, not by position
    (run,) = [r for r in _flow_runs("validate") if r.parameters.get("report_dir") == str(tmp_path / "report")]
    assert run.state.is_failed()


@pytest.mark.slow
def test_pipeline_flow_curates_validates_and_writes_the_manifest(raw, tmp_path, monkeypatch):
    from pipelines.pipeline_flow import pipeline_flow

    monkeypatch.chdir(tmp_path)
    embeddings = "embeddings" in params_mod.DEFAULTS["faces"]  # without descriptors: identities from subject ids
    path = _params(tmp_path, raw, **({} if embeddings else {"corpus": {"identities": {"cluster": False}}}))
    summary = pipeline_flow(sources=["fer2013"], params_path=path)
    assert summary["success"] and list(summary["sources"]) == ["fer2013"]
    manifest = json.loads(Path("data/validated/manifest.json").read_text())
    assert manifest["sources"]["fer2013"]["rows"] == summary["sources"]["fer2013"]["curated"]
    assert manifest["validation_report"] == "reports/validation/index.html"
    corpus = json.loads(Path("data/corpus/manifest.json").read_text())  # the corpus is the last step
    assert (
        list(corpus["sources"]) == ["fer2013"]
        and corpus["sources"]["fer2013"]["rows_in"] == manifest["sources"]["fer2013"]["rows"]
    )
    names = {r.name for r in _flow_runs("fer-data-pipeline")}
    assert names  # the parent run is recorded; its curate and validate runs are subflows of it


@pytest.mark.slow
def test_dask_runner_runs_the_same_flow_on_a_cluster(raw, tmp_path):
    from pipelines.curate_flow import run_curate
    from pipelines.runners import Orchestration, api, dask_cluster

    path = _params(tmp_path, raw)
    with api(), dask_cluster(Orchestration(task_runner="dask"), workers=1) as orch:
        assert orch.dask_address.startswith("tcp://")
        metrics = run_curate("fer2013", tmp_path / "out", params_path=path, orch=orch)
    assert metrics["read"] == 128 and metrics["shards"] > 1


def test_task_runner_comes_from_params():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from pipelines.runners import Orchestration, task_runner

    runner = task_runner(Orchestration.from_params({}), 3)  # default: process
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 3
    raw = {"orchestration": {"task_runner": "dask", "dask_address": "tcp://10.0.0.5:8786"}}
    dask = task_runner(Orchestration.from_params(raw), 3)
    assert isinstance(dask, DaskTaskRunner) and dask.address == "tcp://10.0.0.5:8786"
    assert Orchestration.from_params(raw, task_runner="thread").task_runner == "thread"  # CLI override
    with pytest.raises(ValueError, match="task_runner must be one of process, dask, thread"):
        Orchestration.from_params({"orchestration": {"task_runner": "ray"}})
    with pytest.raises(ValueError, match="unknown setting.*dask_adress"):
        Orchestration.from_params({"orchestration": {"dask_adress": "tcp://x:1"}})
