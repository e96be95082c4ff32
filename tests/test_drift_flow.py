"""The scheduled drift flow: every new inbox batch checked once across restarts, reports and an index page;
the SQLite ledger's claim/commit protocol; the deployment's cron from params.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import drift_scenario as sc
import pytest
import yaml

from fer_data.drift.ledger import Ledger, ready_batches

PARAMS = {"run": {"workers": 1, "shard_size": 16}, "drift": {"schedule": {"settle_seconds": 0, "cron": "15 7 * * *"}}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drift-flow")
    sc.build_reference(tmp)
    (tmp / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    (tmp / "inbox").mkdir()
    return tmp


def _run(project):
    from pipelines.drift_flow import drift_flow

    return drift_flow(
        inbox=str(project / "inbox"),
        reference=str(project / "corpus"),
        out_root=str(project / "reports"),
        params_path=str(project / "params.yaml"),
        return_state=True,
    )


def test_new_batches_are_checked_once_each_across_restarts(prefect_api, chromium, project):
    faces = sc.draw_faces(40)
    sc.write_tree(project / "inbox" / "2026-12-01", faces, sc.skewed(40), shift=True, seed=2)
    (project / "inbox" / "_incoming").mkdir()  # a writer's temporary folder: never a batch

    first = _run(project)
    assert first.is_failed()  # the shifted batch failed its checks: a failed flow run
    report1 = project / "reports" / "2026-12-01" / "drift.json"
    assert json.loads(report1.read_text())["verdict"] == "fail"
    stamp = report1.stat().st_mtime_ns

    sc.write_tree(project / "inbox" / "2026-12-02", faces, sc.cycle(40, 3), seed=2)
    second = _run(project)  # a new run: as after a restart, only the ledger remembers
    assert second.is_completed(), second.message
    assert set(second.result()) == {"2026-12-02"}
    assert report1.stat().st_mtime_ns == stamp  # the first batch was not checked again

    third = _run(project)
    assert third.is_completed() and third.result() == {}

    entries = {e.name: e for e in Ledger(project / "reports" / "drift.sqlite").entries()}
    assert {k: (e.verdict, e.attempts) for k, e in entries.items()} == {
        "2026-12-01": ("fail", 1),
        "2026-12-02": ("pass", 1),
    }
    index = (project / "reports" / "index.html").read_text()
    assert "2026-12-01" in index and "2026-12-02" in index and 'class="fail">fail' in index
    assert 'href="2026-12-01/index.html"' in index and (project / "reports" / "2026-12-02" / "index.html").exists()

    from browser import render

    for page in ("index.html", "2026-12-01/index.html"):  # the index and a batch's report stand alone offline
        render(project / "reports" / page, project / "shots", binary=chromium).assert_offline_complete()


def test_a_crashed_claim_is_taken_over_a_live_one_is_not(tmp_path):
    ledger = Ledger(tmp_path / "drift.sqlite")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claim = ledger.claim("a", timeout_s=3600)
    assert claim and ledger.claim("a", timeout_s=3600) is None  # held by this (live) process
    import sqlite3

    with sqlite3.connect(tmp_path / "drift.sqlite") as db:  # as if a run that has since died held it
        db.execute("UPDATE batches SET pid = ? WHERE name = 'a'", (int(dead.stdout),))
    taken = ledger.claim("a", timeout_s=3600)
    assert taken and taken != claim
    with pytest.raises(RuntimeError, match="taken over"):
        ledger.commit("a", claim, "pass", [], "x")
    ledger.commit("a", taken, "pass", [], "x")
    assert ledger.claim("a", timeout_s=0) is None  # done: never again, whatever the timeout
    b = ledger.claim("b", timeout_s=3600)
    ledger.release("b", b, "ValueError: unreadable")
    assert ledger.claim("b", timeout_s=3600)  # a check that raised is retried by the next run
    assert [e.attempts for e in ledger.entries()] == [2, 2]


def test_only_settled_batches_are_ready(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "a.png").write_bytes(b"x")
    (tmp_path / "new.parquet").write_bytes(b"x")
    (tmp_path / ".tmp").mkdir()
    (tmp_path / "notes.txt").write_text("not a batch")
    past = (tmp_path / "old" / "a.png").stat().st_mtime - 120
    for p in (tmp_path / "old", tmp_path / "old" / "a.png"):
        os.utime(p, (past, past))
    assert [p.name for p in ready_batches(tmp_path, settle_seconds=60)] == ["old"]
    assert [p.name for p in ready_batches(tmp_path, settle_seconds=0)] == ["new.parquet", "old"]


def test_the_deployment_takes_its_cron_from_params(project):
    from pipelines.drift_flow import deployments

    (dep,) = deployments(project / "params.yaml", project_dir=project)
    assert dep.name == "drift" and dep.schedules[0].schedule.cron == "15 7 * * *"
    assert dep.parameters["inbox"] == str(project.resolve() / "data/inbox")
