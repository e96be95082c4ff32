#!/usr/bin/env python3
"""GPU check for the training hand-off: training images/s of the five-layer CNN, GPU busy %, loader images/s.

    python bench/gpu_train_check.py                      # on a GPU host: the stock PyTorch image + this repository
    python bench/gpu_train_check.py --rows 2000 --seconds 3 --batch-sizes 64   # CPU smoke run (smaller in tests)

Needs only torch, numpy, pyarrow, PyYAML (what train/ imports): it generates its own corpus of
cartoon faces (train.synthetic) in the corpus layout, then measures, for each batch size:
  loader    shuffled batches delivered per second (pinned when CUDA is there), `python -m train bench-loader`'s code;
  fed       `fit`'s own training step (device augmentation, bf16 autocast, channels-last) fed by the loader:
            images/s and the GPU's busy % sampled every 0.2 s (torch.cuda.utilization, else nvidia-smi);
  resident  the same step on one batch already on the device: what the GPU does with no loader at all.
fed / resident near 1 means the loader keeps the GPU as busy as the model allows. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from train.bench import bench_loader  # noqa: E402
from train.data import Corpus  # noqa: E402
from train.fit import Run  # noqa: E402
from train.params import TrainParams, build  # noqa: E402
from train.synthetic import synthetic_faces, write_corpus  # noqa: E402

SAMPLE_EVERY_S = 0.2
WARMUP_STEPS = 20  # default --warmup: cuDNN autotuning and allocator growth happen in the first steps


def _utilization() -> float | None:
    try:
        return float(torch.cuda.utilization())
    except Exception:  # needs pynvml; fall back to the driver's tool
        smi = shutil.which("nvidia-smi")
        if not smi:
            return None
        out = subprocess.run([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=5)  # fmt: skip
        return float(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else None


class Sampler(threading.Thread):
    """GPU busy % every SAMPLE_EVERY_S while it runs (nothing on a CPU host)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY_S):
            u = _utilization() if torch.cuda.is_available() else None
            if u is not None:
                self.samples.append(u)

    def result(self) -> dict | None:
        self.stop.set()
        self.join()
        if not self.samples:
            return None
        return {
            "mean": round(float(np.mean(self.samples)), 1),
            "median": float(np.median(self.samples)),
            "n": len(self.samples),
        }


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def fed(run: Run, seconds: float, warmup: int) -> dict:
    """fit's training step over the loader for about `seconds` after warm-up."""
    images, epoch, sampler, started = 0, 0, None, None
    while True:
        run.train_batches.set_epoch(epoch)
        for batch in run.train_loader:
            run.train_step(batch)
            if started is None and run.progress.global_step >= warmup:
                _sync()
                sampler, started = Sampler(), time.perf_counter()
                sampler.start()
            elif started is not None:
                images += len(batch["label"])
                if time.perf_counter() - started >= seconds:
                    _sync()
                    wall = time.perf_counter() - started
                    return {
                        "images_per_s": round(images / wall),
                        "gpu_busy_pct": sampler.result(),
                        "seconds": round(wall, 2),
                    }
        epoch += 1


def resident(run: Run, seconds: float, warmup: int) -> dict:
    """The same step on one batch kept on the device."""
    run.train_batches.set_epoch(0)
    batch = next(iter(run.train_loader))
    batch = {k: v.to(run.device) for k, v in batch.items()}
    for _ in range(warmup):
        run.train_step(batch)
    _sync()
    sampler, images, started = Sampler(), 0, time.perf_counter()
    sampler.start()
    while time.perf_counter() - started < seconds:
        run.train_step(batch)
        images += len(batch["label"])
    _sync()
    wall = time.perf_counter() - started
    return {"images_per_s": round(images / wall), "gpu_busy_pct": sampler.result()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000, help="generated faces (48x48)")
    ap.add_argument("--seconds", type=float, default=15.0, help="timed training per measurement")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=WARMUP_STEPS, help="untimed steps before each measurement")
    ap.add_argument("--model", default="five_layer", help="train.model (the check is about the five-layer CNN)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    result = {
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "rows": args.rows,
        "model": args.model,
        "workers": args.workers,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="gpu-train-check-") as tmp:
        t0 = time.perf_counter()
        images, labels = synthetic_faces(min(args.rows, 20_000), 48, 7, seed=0)
        reps = -(-args.rows // len(images))  # ceil: tile the generated faces up to --rows
        images, labels = np.tile(images, (reps, 1, 1))[: args.rows], np.tile(labels, reps)[: args.rows]
        corpus = write_corpus(f"{tmp}/corpus", images, labels, np.array(["train"] * args.rows), row_group_size=2048)
        result["generate_s"] = round(time.perf_counter() - t0, 1)
        for bs in args.batch_sizes:
            loader = bench_loader(corpus, batch_size=bs, workers=args.workers, epochs=1, cache_dir=f"{tmp}/cache")
            params = build(
                TrainParams, {"batch_size": bs, "workers": args.workers, "cache_dir": f"{tmp}/cache"}, "train"
            )
            run = Run(Corpus.open(corpus), Path(tmp) / f"out{bs}", params)
            row = {
                "batch_size": bs,
                "loader_images_per_s": loader["images_per_s"],
                "fed": fed(run, args.seconds, args.warmup),
            }
            row["resident"] = resident(run, args.seconds, args.warmup)
            row["fed_over_resident"] = round(row["fed"]["images_per_s"] / row["resident"]["images_per_s"], 3)
            result["runs"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
