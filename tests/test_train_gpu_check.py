"""bench/gpu_train_check.py runs on CPU too (small sizes), so the script a GPU host will run is tested here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_train_check.py"


def test_gpu_check_runs_on_cpu_and_reports_every_figure(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_train_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "check.json"
    argv = ["--rows", "120", "--seconds", "0.2", "--batch-sizes", "8", "--warmup", "1", "--model", "baseline"]
    result = module.main([*argv, "--out", str(out)])
    assert json.loads(out.read_text()) == result
    (run,) = result["runs"]
    assert run["batch_size"] == 8 and run["loader_images_per_s"] > 0
    assert run["fed"]["images_per_s"] > 0 and run["resident"]["images_per_s"] > 0
    assert run["fed"]["gpu_busy_pct"] is None  # no GPU here: no figure rather than a made-up one
