"""`torchrun ... -m train fit` on CPU (gloo): two ranks split every epoch, stay in step, and rank 0 writes the outputs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_corpus import demo_corpus

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_train_half_an_epoch_each_and_finish_together(tmp_path):
    corpus = demo_corpus(tmp_path / "corpus")  # 160 training rows
    params = tmp_path / "params.yaml"
    params.write_text(
        f"train: {{model: baseline, epochs: 2, batch_size: 16, lr: 0.01, cache_dir: '{tmp_path / 'cache'}'}}\n"
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "train", "fit", "--corpus", str(corpus), "--out", str(out),
           "--params", str(params)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["test"]["rows"] == 40
    progress = torch.load(out / "checkpoints" / "last.pt", weights_only=False)["progress"]
    assert progress["global_step"] == 2 * (160 // 2 // 16)  # each rank: half the rows, in batches of 16
    assert progress["history"][-1]["images_per_s"] > 0
