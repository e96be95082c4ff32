"""Drift batches are curated on the flow's task runner: on a Dask cluster, the same rows as the local engine."""

from __future__ import annotations

from datetime import UTC, datetime

import drift_scenario as sc
import pytest
import yaml
from test_reliability_output import output_bytes

from fer_data import params as params_mod
from fer_data.curate import curate
from fer_data.drift import config, ingest

pytestmark = pytest.mark.slow


def test_the_drift_flow_curates_a_batch_as_shard_tasks_on_the_dask_cluster(prefect_api, tmp_path):
    from distributed import LocalCluster
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterStartTime,
    )

    from pipelines.drift_flow import drift_flow
    from pipelines.runners import local_cluster_kwargs

    sc.build_reference(tmp_path)
    started = datetime.now(UTC)  # the session's server also holds other tests' curate-batch runs
    batch = sc.write_tree(tmp_path / "inbox" / "2026-12-03", sc.draw_faces(24), sc.cycle(24), seed=3)
    with LocalCluster(**local_cluster_kwargs(2)) as cluster:
        raw = {
            "run": {"workers": 1, "shard_size": 4},
            "drift": {"schedule": {"settle_seconds": 0}},
            "orchestration": {"task_runner": "dask", "dask_address": cluster.scheduler_address},
        }
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        drift_flow(
            inbox=str(tmp_path / "inbox"),
            reference=str(tmp_path / "corpus"),
            out_root=str(tmp_path / "reports"),
            params_path=str(tmp_path / "params.yaml"),
            return_state=True,
        )
        with cluster.get_client() as client:
            on_workers = client.run(lambda: __import__("sys").modules.get("fer_data.faces.process") is not None)
    assert sorted(on_workers.values()) == [True, True]  # both Dask workers did face work

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["curate-batch"])),
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started)),
        )
        ids = FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs]))
        tasks = [t.name for t in client.read_task_runs(flow_run_filter=ids, limit=200)]
    on_cluster = tmp_path / "reports" / "2026-12-03" / ingest.BATCH_DIR
    parts = list((on_cluster / "curated.parquet").glob("part-*.parquet"))
    assert len(runs) == 1 and sum(name.startswith("inbox-shard-") for name in tasks) == len(parts) > 1

    p = params_mod.resolve(raw)
    local = ingest.ingest(batch, tmp_path / "local", p, config.parse(raw), curate)
    assert local.rows > 0 and output_bytes(on_cluster) == output_bytes(tmp_path / "local" / ingest.BATCH_DIR)
