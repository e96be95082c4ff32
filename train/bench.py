"""The loader benchmark: shuffled batches delivered per second (pinned when CUDA is there), per CPU core.

Times whole epochs after the first (which builds the image cache, timed on its own), so the figure
is the steady state a training loop sees. CPU time is measured too: images per CPU-second is the
per-core figure, honest whatever else is running on the machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from train.data import Corpus, ShardBatches, ShardStore, make_loader


def bench_loader(corpus_dir: str | Path, *, split: str = "train", batch_size: int = 128, workers: int = 0,
                 epochs: int = 3, cache_dir: str | Path | None = None, pin: bool | None = None) -> dict:  # fmt: skip
    corpus = Corpus.open(corpus_dir)
    t0 = time.perf_counter()
    store = ShardStore.open(corpus, split, cache_dir)
    open_s = time.perf_counter() - t0
    pin = torch.cuda.is_available() if pin is None else pin
    dataset = ShardBatches(store, batch_size, shuffle=True, seed=0, drop_last=False, pin=pin)
    walls, cpus, images = [], [], 0
    loader = make_loader(dataset, workers)
    for epoch in range(epochs + 1):  # epoch 0 warms the page cache (and starts any workers)
        dataset.set_epoch(epoch)
        w0, c0, n = time.perf_counter(), time.process_time(), 0
        for batch in loader:
            n += len(batch["label"])
        if epoch:
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            images += n
    return {
        "rows": len(store),
        "batch_size": batch_size,
        "workers": workers,
        "pinned": pin,
        "open_s": round(open_s, 3),
        "images_per_s": round(images / sum(walls)),
        "images_per_cpu_s": round(images / max(sum(cpus), 1e-9)) if workers == 0 else None,
    }
