"""A DVC remote on an S3 API (README.md, "Sharing data through object storage").

moto's S3 server runs on loopback inside the test; a scratch git + DVC repository curates the JAFFE
demo and builds a corpus from it (curated tables, rejects, metrics, the corpus shards and its steward
report), pushes to an `s3://` remote whose endpoint lives in `.dvc/config.local` and whose credentials
come from the environment (neither is committed), and a fresh `git clone` pulls: every file has the
same hash, and `dvc repro` there has nothing to do.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BUCKET = "fer-data-dvc"
#: Bound on one command (the first `dvc repro` curates 42 images and builds a corpus: ~30 s when idle).
COMMAND_S = 400

DVC_YAML = {
    "stages": {
        "demo": {
            "cmd": "fer-data demo raw",
            "params": ["sources.jaffe"],
            "outs": ["raw"],
        },
        "curate": {
            "cmd": "fer-data curate --source jaffe --root raw/jaffe --out curated/jaffe --params params.yaml",
            "deps": ["raw/jaffe"],
            "params": ["sources.jaffe", "run.shard_size"],
            "outs": ["curated/jaffe/curated.parquet", "curated/jaffe/rejects.parquet"],
            "metrics": ["curated/jaffe/metrics.json"],
        },
        "corpus": {
            "cmd": "fer-data corpus --curated curated/jaffe --out corpus --params params.yaml",
            "deps": ["curated/jaffe/curated.parquet"],
            "params": ["corpus"],
            "outs": ["corpus"],
        },
    }
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_S)
    if res.returncode:
        raise AssertionError(f"{' '.join(cmd)} exited {res.returncode}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res.stdout + res.stderr


def hashes(root: Path, tops: list[str]) -> dict[str, str]:
    """sha256 of every file under the given outputs, by path (DVC's own .gitignore files left out)."""
    found = {}
    for top in tops:
        for path in sorted(p for p in (root / top).rglob("*") if p.is_file() and p.name != ".gitignore"):
            found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def s3(monkeypatch):
    """moto's S3 server on a free loopback port, a bucket in it, and credentials in the environment only."""
    import boto3
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        server.stop()


def test_push_then_pull_into_a_fresh_clone_restores_identical_files_and_repro_is_a_no_op(s3, tmp_path):
    endpoint, client = s3
    env = dict(os.environ)
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "DVC_NO_ANALYTICS": "1",
    }
    dvc, git = [sys.executable, "-m", "dvc"], ["git"]
    origin = tmp_path / "origin"
    origin.mkdir()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["sources"] = {"jaffe": {**params["sources"]["jaffe"], "root": "raw/jaffe"}}
    params["run"] |= {"workers": 1, "shard_size": 16}
    (origin / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (origin / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    run([*git, "init", "-q"], origin, env)
    run([*dvc, "init", "-q"], origin, env)
    run([*dvc, "config", "core.analytics", "false"], origin, env)
    run([*dvc, "remote", "add", "-d", "store", f"s3://{BUCKET}/fer-data"], origin, env)
    run([*dvc, "remote", "modify", "--local", "store", "endpointurl", endpoint], origin, env)
    run([*dvc, "repro"], origin, env)
    run([*git, "add", "-A"], origin, env)
    run([*git, "commit", "-qm", "pipeline"], origin, env)
    assert "endpointurl" not in (origin / ".dvc" / "config").read_text()
    leaked = subprocess.run([*git, "grep", "-q", "-e", endpoint, "-e", "testing-key"], cwd=origin, env=env)
    assert leaked.returncode == 1  # neither the endpoint nor a credential is in any committed file
    run([*dvc, "push"], origin, env)
    stored = client.list_objects_v2(Bucket=BUCKET, Prefix="fer-data/")["KeyCount"]
    assert stored > 10

    clone = tmp_path / "clone"
    run([*git, "clone", "-q", str(origin), str(clone)], tmp_path, env)
    assert not (clone / ".dvc" / "config.local").exists() and not (clone / "corpus").exists()
    run([*dvc, "remote", "modify", "--local", "store", "endpointurl", endpoint], clone, env)
    run([*dvc, "pull"], clone, env)
    tops = ["raw", "curated", "corpus"]
    pulled, built = hashes(clone, tops), hashes(origin, tops)
    assert pulled == built
    assert any(p.startswith("corpus/shards/") for p in pulled) and "corpus/report/index.html" in pulled
    assert "curated/jaffe/curated.parquet/part-00000.parquet" in pulled
    out = run([*dvc, "repro"], clone, env)
    assert "Running stage" not in out and "up to date" in out
    assert hashes(clone, tops) == built
