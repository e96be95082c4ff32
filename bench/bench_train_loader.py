#!/usr/bin/env python3
"""Training loader throughput: train/'s shard loader vs an image-folder loader that decodes one PNG per sample.

    .venv/bin/python bench/bench_train_loader.py --n 20000 --repeats 3

Input (written once under --work): N 48x48 grey faces (the real FER2013 sample images from
../shared/realdata, or $FER_DATA_REALDATA, cycled with a little brightness jitter when present, else the demo's LFW faces),
as a corpus (`train.synthetic.write_corpus`: the corpus layout, 2048-row row groups) and as an image
folder of PNGs (root/<class>/<n>.png, what the seed repositories train from with torchvision's
ImageFolder). Both deliver the same thing: shuffled batches of 128 uint8 faces with their labels
(in pinned memory when CUDA is present; it is not on this machine), one process, no workers, so the
CPU time of the process is the cost on one core. Reported: median images per wall second and per
CPU second over repeats, each repeat one full epoch, and their ratio, all in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REALDATA = Path(os.environ.get("FER_DATA_REALDATA", REPO.parent / "shared" / "realdata"))

from train.data import Corpus, ShardBatches, ShardStore, make_loader  # noqa: E402
from train.synthetic import FER2013_7, write_corpus  # noqa: E402


def faces(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    real = sorted((REALDATA / "fer2013" / "images").rglob("*.jpg"))
    if real:
        base = np.stack([np.asarray(Image.open(p).convert("L").resize((48, 48))) for p in real])
        labels = np.array([FER2013_7.index({"angry": "anger", "happy": "happiness", "sad": "sadness"}.get(
            p.parent.name, p.parent.name)) for p in real])  # fmt: skip
        origin = f"{len(real)} real FER2013 sample images"
    else:
        from fer_data.demo import DemoFaces

        demo = DemoFaces()
        base = np.stack([demo.face(i, 48) for i in range(len(demo))])
        labels = np.arange(len(base)) % 7
        origin = "demo LFW faces"
    rng = np.random.default_rng(0)
    pick = np.arange(n) % len(base)
    jitter = rng.integers(-8, 9, (n, 1, 1))
    return np.clip(base[pick].astype(int) + jitter, 0, 255).astype(np.uint8), labels[pick], origin


class PngFolder(torch.utils.data.Dataset):
    """torchvision ImageFolder's work per sample: open, decode, to a uint8 tensor."""

    def __init__(self, root: Path):
        self.items = [(p, FER2013_7.index(p.parent.name)) for p in sorted(root.glob("*/*.png"))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, label = self.items[i]
        with Image.open(path) as im:
            return torch.from_numpy(np.array(im.convert("L"))), label


def epoch_png(loader) -> int:
    n = 0
    for images, _labels in loader:
        n += len(images)
    return n


def epoch_shards(dataset: ShardBatches, epoch: int) -> int:
    dataset.set_epoch(epoch)
    n = 0
    for batch in make_loader(dataset, 0):
        n += len(batch["image"])
    return n


def timed(fn) -> tuple[float, float, int]:
    w, c = time.perf_counter(), time.process_time()
    n = fn()
    return time.perf_counter() - w, time.process_time() - c, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--work", default=None, help="folder for the inputs (default: a temporary one)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-train-loader-"))
    images, labels, origin = faces(args.n)
    pin = torch.cuda.is_available()
    if not (work / "corpus" / "manifest.json").exists():
        write_corpus(work / "corpus", images, labels, np.array(["train"] * args.n), row_group_size=2048)
        for i, (img, label) in enumerate(zip(images, labels)):
            d = work / "png" / FER2013_7[label]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i}.png")
    t0 = time.perf_counter()
    store = ShardStore.open(Corpus.open(work / "corpus"), "train", work / "cache")
    open_s = time.perf_counter() - t0
    dataset = ShardBatches(store, args.batch_size, shuffle=True, seed=0, pin=pin)
    png = torch.utils.data.DataLoader(PngFolder(work / "png"), args.batch_size, shuffle=True, pin_memory=pin)
    epoch_shards(dataset, 0)  # warm the page cache for both
    epoch_png(png)
    runs = {"shards": [], "png": []}
    for r in range(args.repeats):
        runs["shards"].append(timed(lambda: epoch_shards(dataset, r + 1)))
        runs["png"].append(timed(lambda: epoch_png(png)))
    result = {
        "n": args.n,
        "faces": origin,
        "batch_size": args.batch_size,
        "pinned": pin,
        "cache_open_s": round(open_s, 3),
    }
    for name, rs in runs.items():
        result[name] = {
            "images_per_s": round(statistics.median(n / w for w, _, n in rs)),
            "images_per_cpu_s": round(statistics.median(n / max(c, 1e-9) for _, c, n in rs)),
        }
    result["ratio_wall"] = round(result["shards"]["images_per_s"] / result["png"]["images_per_s"], 1)
    result["ratio_cpu"] = round(result["shards"]["images_per_cpu_s"] / result["png"]["images_per_cpu_s"], 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
