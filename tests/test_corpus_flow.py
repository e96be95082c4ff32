"""The `corpus` Prefect flow and `fer-data flow corpus`, under the session's test server."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from test_corpus_build import _world

from fer_data.cli import main

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_corpus_flow_builds_the_corpus_and_records_the_run(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    from pipelines.corpus_flow import corpus_flow

    world = _world(tmp_path / "world")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"corpus": {"splits": {"seed": 3}}}))
    out = tmp_path / "corpus"
    result = corpus_flow(out=str(out), curated=[str(p) for p in world.values()], params_path=str(params))
    manifest = json.loads((out / "manifest.json").read_text())
    assert {k: v["rows"] for k, v in result["splits"].items()} == {k: v["rows"] for k, v in manifest["splits"].items()}
    assert result["metrics"]["rows_in"] == 92 and manifest["params"]["splits"]["seed"] == 3
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["corpus"])))
        artifacts = {a.key for a in client.read_artifacts() if a.flow_run_id in {r.id for r in runs}}
    assert runs and all(r.state.is_completed() for r in runs) and "corpus" in artifacts


def test_flow_command_refuses_bad_params_before_prefect_starts(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"corpus": {"splits": {"ratios": {"train": 1.0}}}}))
    res = CliRunner().invoke(main, ["flow", "corpus", "--out", str(tmp_path / "c"), "--params", str(params)])
    assert res.exit_code == 1 and "corpus.splits.ratios: needs exactly the keys train, val, test" in res.output
