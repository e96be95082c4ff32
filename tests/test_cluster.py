"""The curate flow on a Dask cluster started by hand, as on several machines (README.md, "Several machines").

A real `dask scheduler`, two `dask worker --nthreads 1` and a `prefect server start` run as separate
processes on 127.0.0.1; `fer-data flow curate` runs against them (`orchestration.task_runner: dask`,
`dask_address`, `shard_retries`). The published output must be byte-identical to a local run of the
engine, also when one worker is killed while it curates a shard. Every process the test starts is
killed (its whole process group) when the test ends, passed or failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from test_reliability_output import output_bytes

from fer_data import params as params_mod
from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import get

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: Seconds to wait for a process to come up: `prefect server start` needs 20-25 s on an idle 2-core machine.
STARTUP_S = 150
#: Bound on one flow run (about 20 s here when idle; the machine is shared).
RUN_S = 300
#: Items per shard: the 42 JAFFE demo images in 14 shards, so a worker can be killed with shards still to do.
SHARD_SIZE = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Processes started in their own process groups; `close()` kills every group (idempotent)."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process group)
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log = log  # type: ignore[attr-defined]
        self.started[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """Kill NAME's process group and forget it (a process that ended already is only forgotten)."""
        proc = self.started.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        proc.log.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        for name in list(self.started):
            self.kill(name)

    def tail(self, name: str, chars: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-chars:]


def wait_for(what: str, ready, procs: Processes, timeout: float = STARTUP_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        for name, proc in procs.started.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited {proc.returncode} while waiting for {what}:\n{procs.tail(name)}")
        time.sleep(0.5)
    raise AssertionError(f"{what} not ready after {timeout:.0f} s")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as res:
        return res.status == 200


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict]:
    """Scheduler, two single-threaded workers (no nanny: a killed worker stays dead) and a Prefect server."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("cluster")
    sched_port, api_port = free_port(), free_port()
    env = dict(os.environ)
    env |= {
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{api_port}/api",  # what every worker machine is given
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "TMPDIR": str(tmp),  # dask-scratch-space
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    }
    procs = Processes(env, tmp)
    address = f"tcp://127.0.0.1:{sched_port}"
    client = None
    try:
        procs.start(
            "prefect", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(api_port)]
        )
        procs.start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(sched_port)])
        wait_for("the scheduler", lambda: socket.create_connection(("127.0.0.1", sched_port), 1).close() or True, procs)
        worker = [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1"]
        for name in ("worker-1", "worker-2"):
            procs.start(name, [*worker, "--name", name])
        client = Client(address, timeout=STARTUP_S)
        client.wait_for_workers(2, timeout=STARTUP_S)
        wait_for("the Prefect server", lambda: http_ok(f"http://127.0.0.1:{api_port}/api/health"), procs)
        yield {"address": address, "env": env, "procs": procs, "client": client, "tmp": tmp}
    finally:
        if client is not None:
            client.close()
        procs.close()


@pytest.fixture(scope="module")
def jaffe(cluster) -> dict:
    """The JAFFE demo tree, params for the cluster and the output of a local run of the engine."""
    tmp = cluster["tmp"]
    root = tmp / "raw" / "jaffe"
    get("jaffe").write_demo(root, DemoFaces())
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["sources"] = {"jaffe": {**raw["sources"]["jaffe"], "root": str(root)}}
    raw["run"] |= {"workers": 1, "shard_size": SHARD_SIZE}
    raw["orchestration"] |= {"task_runner": "dask", "dask_address": cluster["address"], "shard_retries": 2}
    params_path = tmp / "params.yaml"
    params_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    local = tmp / "local"
    curate("jaffe", root, local, params_mod.resolve(raw))
    return {"root": root, "params": params_path, "local": local}


def run_flow(cluster: dict, jaffe: dict, out: Path) -> subprocess.Popen:
    cmd = [str(BIN / "fer-data"), "flow", "curate", "--source", "jaffe", "--out", str(out), "--params"]
    return cluster["procs"].start(f"flow-{out.name}", [*cmd, str(jaffe["params"])])


def finish(cluster: dict, proc: subprocess.Popen, name: str) -> None:
    procs = cluster["procs"]
    try:
        proc.wait(timeout=RUN_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} did not finish in {RUN_S} s:\n{procs.tail(name)}") from None
    finally:
        procs.kill(name)
    assert proc.returncode == 0, procs.tail(name)


def test_cluster_output_equals_a_local_run_with_embeddings_computed_on_the_workers(cluster, jaffe):
    out = cluster["tmp"] / "on-cluster"
    finish(cluster, run_flow(cluster, jaffe, out), "flow-on-cluster")
    assert output_bytes(out) == output_bytes(jaffe["local"])
    ran_on = cluster["client"].run(lambda: sys.modules.get("fer_data.faces.embed") is not None)
    assert sorted(ran_on.values()) == [True, True]  # both workers computed face descriptors
    embeddings = pq.read_table(out / "curated.parquet", columns=["embedding"]).column("embedding")
    assert embeddings.null_count == 0 and len(embeddings) > 30


def test_cluster_output_equals_a_local_run_after_a_worker_is_killed_mid_run(cluster, jaffe):
    out, client, procs = cluster["tmp"] / "worker-killed", cluster["client"], cluster["procs"]
    victim = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "worker-1")
    flow = run_flow(cluster, jaffe, out)
    wait_for("a shard on worker-1", lambda: client.processing(workers=[victim])[victim], procs, RUN_S)
    time.sleep(1.0)  # into the shard's face work
    assert flow.poll() is None
    procs.kill("worker-1")
    finish(cluster, flow, "flow-worker-killed")
    assert list(client.scheduler_info()["workers"]) != [] and victim not in client.scheduler_info()["workers"]
    assert output_bytes(out) == output_bytes(jaffe["local"])
