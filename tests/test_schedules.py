"""`fer-data serve`: deployments and cron schedules from params.yaml, checked without waiting for a run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fer_data.cli import main

REPO = Path(__file__).resolve().parents[1]


def _params(tmp_path: Path) -> Path:
    doc = yaml.safe_load((REPO / "params.yaml").read_text())
    doc["schedules"] = {
        "nightly": {"cron": "0 2 * * *", "timezone": "UTC", "sources": []},
        "folder-hourly": {"cron": "15 * * * *", "timezone": "Europe/Berlin", "sources": ["folder"], "active": False},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_project_params_schedule_a_nightly_pipeline(tmp_path):
    from pipelines.serve import deployments

    (nightly,) = deployments(REPO / "params.yaml", project_dir=tmp_path)
    assert nightly.name == "nightly" and nightly.schedules[0].schedule.cron == "0 2 * * *"
    assert nightly.parameters["curated_root"] == str(tmp_path.resolve() / "data/curated")
    assert Path(nightly.parameters["params_path"]).is_absolute()


def test_deployments_carry_schedules_parameters_and_state(tmp_path):
    from pipelines.serve import deployments

    nightly, hourly = deployments(_params(tmp_path), project_dir=tmp_path)
    assert (nightly.schedules[0].schedule.cron, nightly.schedules[0].schedule.timezone) == ("0 2 * * *", "UTC")
    assert nightly.parameters["sources"] is None and nightly.schedules[0].active
    assert hourly.parameters["sources"] == ["folder"] and not hourly.schedules[0].active
    assert hourly.schedules[0].schedule.timezone == "Europe/Berlin"


def test_next_runs_are_computed_offline():
    from pipelines.serve import Schedule, next_runs

    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    runs = next_runs(Schedule("nightly", "0 2 * * *"), n=2, start=start)
    assert [r.isoformat() for r in runs] == ["2026-01-02T02:00:00+00:00", "2026-01-03T02:00:00+00:00"]


def test_serve_check_lists_schedules(tmp_path):
    res = CliRunner().invoke(main, ["serve", "--check", "--params", str(_params(tmp_path))])
    assert res.exit_code == 0, res.output
    assert "nightly\tcron '0 2 * * *' UTC\tsources: all\tnext: " in res.output
    assert "folder-hourly" in res.output and "paused" in res.output


def test_a_schedule_without_cron_is_an_error(tmp_path):
    from pipelines.serve import deployments

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"schedules": {"broken": {"timezone": "UTC"}}}))
    with pytest.raises(ValueError, match="schedules.broken.cron: must be a cron expression"):
        deployments(path)


def test_deployments_register_with_their_schedules(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client

    from pipelines.serve import deployments

    for deployment in deployments(_params(tmp_path), project_dir=tmp_path):
        deployment.apply()
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("fer-data-pipeline/nightly")
        hourly = client.read_deployment_by_name("fer-data-pipeline/folder-hourly")
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"] and nightly.schedules[0].active
    assert [s.schedule.cron for s in hourly.schedules] == ["15 * * * *"] and not hourly.schedules[0].active
    assert nightly.parameters["report_dir"] == str(tmp_path.resolve() / "reports/validation")
    assert "fer-data" in nightly.tags
