"""Training and evaluation from a corpus: the loop, checkpoints and resume, and the files DVC reads.

`fit` writes into OUT (README.md, "Training"): metrics.json, confusion_matrix.csv, plots/ (DVC plot
data and PNGs), checkpoints/last.pt and model.pt (the best epoch by validation accuracy). A checkpoint
holds everything a run needs to continue where it stopped, mid-epoch included: the loader's position
(epoch, batch), the optimiser, the plateau scheduler, the running sums, and the RNG state; the
augmentation is seeded by (seed, epoch, step), so on CPU a resumed run ends where the uninterrupted one does.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from train import __version__, models, png
from train.augment import affine, step_generator, to_input
from train.data import Corpus, ShardBatches, ShardStore, make_loader
from train.metrics import score
from train.params import TrainParams, to_dict

log = logging.getLogger("train")

EVAL_BATCH = 512  # evaluation holds no gradients: larger batches, fewer loader round trips
RANK_SEED_STRIDE = 7919  # ranks draw different augmentations: seed + stride * rank (rank 0 keeps the seed's stream)


@dataclass
class Progress:
    """Where a run is; saved in every checkpoint."""

    epoch: int = 0  # the epoch in progress (or next)
    step: int = 0  # batches done in that epoch
    global_step: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = -1
    stale: int = 0  # epochs since validation accuracy last improved
    history: list = field(default_factory=list)  # one dict per finished epoch (the learning curves)
    running: dict = field(default_factory=lambda: {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0})
    stopped_early: bool = False


def ranks() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; joins the process group when world > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is cuda but torch sees no CUDA device")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def _autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA (no loss scaling needed); a no-op on CPU, where runs stay exactly reproducible."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_text(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(content)
    os.replace(tmp, path)


@torch.no_grad()
def predict(
    model, store: ShardStore, device: torch.device, *, tta_flip: bool, amp: bool, channels_last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (rows, classes) for every row of a store, in row order, and the mean loss."""
    model.eval()
    dataset = ShardBatches(store, EVAL_BATCH, shuffle=False, pin=device.type == "cuda")
    probs, losses = [], []
    for batch in dataset:  # one pass, a gather a batch: workers would only add their start-up
        x = to_input(batch["image"].to(device, non_blocking=True))
        with _autocast(device, amp):
            views = [x, x.flip(3)] if tta_flip else [x]
            p = sum(F.softmax(model(_layout(v, channels_last)).float(), 1) for v in views) / len(views)
        probs.append(p.cpu())
        losses.append(F.nll_loss(torch.log(p.clamp_min(1e-12)).cpu(), batch["label"], reduction="sum").item())
    if not probs:
        return np.zeros((0, 0), np.float32), np.float64(0.0)
    return torch.cat(probs).numpy(), np.float64(sum(losses) / len(store))


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class Run:
    """One training run: model, optimiser, scheduler and loaders for a corpus and an output folder.

    Under torchrun (WORLD_SIZE > 1) each rank trains on its share of every epoch through
    DistributedDataParallel; rank 0 alone writes checkpoints and outputs, and its validation accuracy
    drives every rank's plateau and early-stopping decisions (broadcast, so no rank stops alone).
    """

    def __init__(self, corpus: Corpus, out: Path, params: TrainParams):
        self.corpus, self.out, self.p = corpus, out, params
        self.rank, self.world, local = ranks()
        self.device = pick_device(params.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", local)
            torch.cuda.set_device(self.device)
        self.cuda = self.device.type == "cuda"
        self.channels_last = params.channels_last and self.cuda
        torch.manual_seed(params.seed)
        if not self.cuda:
            torch.use_deterministic_algorithms(True)
        self.stores = {s: ShardStore.open(corpus, s, params.cache_dir) for s in ("train", "val", "test")}
        size = int(corpus.image["height"])
        self.net = models.build(params.model, len(corpus.classes), size).to(self.device)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.model = self.net  # what training calls; a DDP wrapper of net on several ranks
        if self.world > 1:
            self.model = DistributedDataParallel(self.net, device_ids=[self.device.index] if self.cuda else None)
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=params.lr_factor, patience=params.lr_patience
        )
        weights = corpus.class_weights("train") if params.loss_weights == "class" else None
        self.class_weights = torch.tensor(weights, device=self.device) if weights else None
        if params.loss_weights == "sample" and self.stores["train"].weights is None:
            raise ValueError(f"train.loss_weights is sample but {corpus.root}'s shards have no sample_weight column")
        self.progress = Progress()
        self._sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss, correct since the last flush
        self.train_batches = ShardBatches(
            self.stores["train"], params.batch_size, shuffle=True, seed=params.seed, rank=self.rank, world=self.world,
            drop_last=params.drop_last and len(self.stores["train"]) // self.world >= params.batch_size, pin=self.cuda,
        )  # fmt: skip

    # ---- checkpoints ----
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    def save_checkpoint(self) -> None:
        self.flush_sums()
        if self.rank:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "progress": dataclasses.asdict(self.progress),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.cuda else None,
            "classes": self.corpus.classes,
            "params": to_dict(self.p),
        }
        _atomic_save(state, self.checkpoint_path)

    def load_checkpoint(self) -> bool:
        if not self.checkpoint_path.is_file():
            log.info("no checkpoint at %s: starting afresh", self.checkpoint_path)
            return False
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        if state["classes"] != self.corpus.classes:
            raise ValueError(f"{self.checkpoint_path}: classes {state['classes']} differ from the corpus's")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.progress = Progress(**state["progress"])
        torch.set_rng_state(state["rng"])
        if self.cuda and state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log.info("resumed from %s at epoch %d, batch %d", self.checkpoint_path, self.progress.epoch, self.progress.step)
        return True

    def save_model(self, path: Path) -> None:
        if self.rank:
            return
        _atomic_save(
            {
                "kind": "fer-train-model",
                "model": self.p.model,
                "classes": self.corpus.classes,
                "image": self.corpus.image,
                "tta_flip": self.p.tta_flip,
                "state_dict": self.net.state_dict(),
                "epoch": self.progress.epoch,
                "created_by": f"train {__version__}",
            },
            path,
        )

    # ---- the loop ----
    def train_step(self, batch: dict) -> None:
        p, prog = self.p, self.progress
        images = batch["image"].to(self.device, non_blocking=True)
        gen = step_generator(self.device, p.seed + RANK_SEED_STRIDE * self.rank, prog.epoch, prog.step)
        x = affine(to_input(images), p.augment, gen)
        label = batch["label"].to(self.device, non_blocking=True)
        target = batch["target"].to(self.device, non_blocking=True) if p.soft_labels and "target" in batch else label
        with _autocast(self.device, p.amp):
            logits = self.model(_layout(x, self.channels_last))
        if p.loss_weights == "sample":
            w = batch["weight"].to(self.device, non_blocking=True)
            loss = (F.cross_entropy(logits.float(), target, reduction="none") * w).sum() / w.sum().clamp_min(1e-12)
        else:
            loss = F.cross_entropy(logits.float(), target, weight=self.class_weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # Summed on the device (float64: the same sums however often they are flushed); reading them every
        # step would make the CPU wait for the GPU before it gathers the next batch.
        self._sums[0] += loss.detach().double() * len(label)
        self._sums[1] += (logits.argmax(1) == label).sum()
        prog.running["seen"] += len(label)
        prog.step += 1
        prog.global_step += 1

    def flush_sums(self) -> None:
        """Move the device-side loss / correct sums into progress.running (before a checkpoint or epoch end)."""
        loss, correct = self._sums.tolist()
        self.progress.running["loss"] += loss
        self.progress.running["correct"] += int(correct)
        self._sums.zero_()

    @functools.cached_property
    def train_loader(self):
        """One DataLoader for the whole run (its workers, if any, persist across epochs)."""
        return make_loader(self.train_batches, self.p.workers)

    def train_epoch(self, max_steps: int | None) -> bool:
        """Run the rest of the current epoch; False when max_steps stopped it part-way (checkpoint saved)."""
        self.model.train()
        self.train_batches.set_epoch(self.progress.epoch, self.progress.step)
        started = time.perf_counter()
        for batch in self.train_loader:
            self.train_step(batch)
            done = max_steps is not None and self.progress.global_step >= max_steps
            every = self.p.checkpoint_every
            if done or (every and self.progress.global_step % every == 0):
                self.progress.running["seconds"] += time.perf_counter() - started
                started = time.perf_counter()
                self.save_checkpoint()
            if done:
                return False
        self.progress.running["seconds"] += time.perf_counter() - started
        return True

    def end_epoch(self) -> None:
        """Validation, learning-rate plateau, best model, early stopping, the learning-curve row; then checkpoint."""
        self.flush_sums()
        prog, run = self.progress, self.progress.running
        val = self.stores["val"]
        row = {
            "epoch": prog.epoch + 1,
            "train_loss": run["loss"] / max(run["seen"], 1),
            "train_accuracy": run["correct"] / max(run["seen"], 1),
            "images_per_s": run["seen"] / max(run["seconds"], 1e-9),
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        accuracy = row["train_accuracy"]  # without a validation split the last epoch counts as best
        if len(val):
            probs, loss = predict(self.net, val, self.device, tta_flip=self.p.tta_flip, amp=self.p.amp,
                                  channels_last=self.channels_last)  # fmt: skip
            accuracy = self.from_rank0(float((probs.argmax(1) == val.labels).mean()))
            row.update(val_loss=float(loss), val_accuracy=accuracy)
            self.scheduler.step(accuracy)
        prog.history.append(row)
        log.info("epoch %d: %s", prog.epoch + 1, ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        if accuracy > prog.best_accuracy or not len(val):
            prog.best_accuracy, prog.best_epoch, prog.stale = accuracy, prog.epoch + 1, 0
            self.save_model(self.out / "model.pt")
        else:
            prog.stale += 1
        prog.stopped_early = bool(len(val)) and prog.stale >= self.p.early_stop_patience
        prog.epoch, prog.step = prog.epoch + 1, 0
        prog.running = Progress().running
        self.save_checkpoint()

    def from_rank0(self, value: float) -> float:
        """Rank 0's value on every rank (ranks' batch-norm statistics differ a little, so may their scores)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(t, 0)
        return float(t.item())


def fit(corpus_dir: str | Path, out_dir: str | Path, params: TrainParams, *, resume: bool = False,
        max_steps: int | None = None) -> dict | None:  # fmt: skip
    """Train, then score the best model on val and test and write every output file.

    max_steps stops after that many optimiser steps in all (a checkpoint is written; `resume` continues):
    for smoke runs and the resume tests. Returns metrics.json's content, or None when stopped that way.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = Run(Corpus.open(corpus_dir), out, params)
    if resume:
        run.load_checkpoint()
    while run.progress.epoch < params.epochs and not run.progress.stopped_early:
        if not run.train_epoch(max_steps):
            return None
        run.end_epoch()
    return write_outputs(run) if run.rank == 0 else None


def load_model(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    state = torch.load(path, map_location=device, weights_only=False)
    if state.get("kind") != "fer-train-model":
        raise ValueError(f"{path}: not a model written by `python -m train fit`")
    model = models.build(state["model"], len(state["classes"]), int(state["image"]["height"]))
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval(), state


def evaluate(model_path: str | Path, corpus_dir: str | Path, split: str, *, device: str = "auto",
             cache_dir: str | None = None, tta_flip: bool | None = None) -> tuple[dict, np.ndarray, ShardStore, np.ndarray]:  # fmt: skip
    """Score a saved model on a corpus split: (scores, confusion matrix, store, predicted labels)."""
    dev = pick_device(device)
    model, state = load_model(model_path, dev)
    corpus = Corpus.open(corpus_dir)
    if state["classes"] != corpus.classes or state["image"]["height"] != corpus.image["height"]:
        raise ValueError(f"{model_path}: classes / image size differ from {corpus.root}'s manifest")
    store = ShardStore.open(corpus, split, cache_dir)
    flip = state["tta_flip"] if tta_flip is None else tta_flip
    probs, _ = predict(model, store, dev, tta_flip=flip, amp=True, channels_last=False)
    predicted = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    scores, cm = score(store.labels, predicted, store.sources, store.source_names, corpus.classes)
    return scores, cm, store, predicted


def write_outputs(run: Run) -> dict:
    """Score the best model on val and test; write metrics.json, confusion_matrix.csv and plots/."""
    out, prog, classes = run.out, run.progress, run.corpus.classes
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    metrics = {
        "model": run.p.model,
        "parameters": models.parameter_count(run.net),
        "epochs_run": prog.epoch,
        "best_epoch": prog.best_epoch,
        "stopped_early": prog.stopped_early,
        "train": {k: round(v, 6) for k, v in prog.history[-1].items() if k != "epoch"} if prog.history else {},
    }
    matrices = []
    for split in ("val", "test"):
        if not len(run.stores[split]):
            continue
        scores, cm, store, predicted = evaluate(out / "model.pt", run.corpus.root, split, device=str(run.device),
                                                cache_dir=run.p.cache_dir)  # fmt: skip
        metrics[split] = scores
        matrices.append((split, cm))
        _write_predictions(plots / f"predictions_{split}.csv", store, predicted, classes)
        png.confusion_png(cm, plots / f"confusion_{split}.png", classes)
    _atomic_text(out / "confusion_matrix.csv", _confusion_csv(matrices, classes))
    _write_curves(plots, prog.history)
    _atomic_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _confusion_csv(matrices: list[tuple[str, np.ndarray]], classes: list[str]) -> str:
    """For people: one row per (split, actual class), one column per predicted class."""
    rows = [[split, c, *cm[i].tolist()] for split, cm in matrices for i, c in enumerate(classes)]
    return _csv_text(["split", "actual", *classes], rows)


def _write_predictions(path: Path, store: ShardStore, predicted: np.ndarray, classes: list[str]) -> None:
    """One row per sample (what `dvc plots` confusion templates count)."""
    rows = [
        [sid, store.source_names[s], classes[a], classes[p]]
        for sid, s, a, p in zip(store.sample_ids, store.sources, store.labels, predicted)
    ]
    _atomic_text(path, _csv_text(["sample_id", "source", "actual", "predicted"], rows))


def _write_curves(plots: Path, history: list[dict]) -> None:
    keys = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "images_per_s"]
    rows = [[h.get(k, "") for k in keys] for h in history]
    _atomic_text(plots / "learning_curve.csv", _csv_text(keys, rows))
    for name, series in (("loss", ("train_loss", "val_loss")), ("accuracy", ("train_accuracy", "val_accuracy"))):
        png.curves_png({k: [h[k] for h in history if k in h] for k in series}, plots / f"{name}.png")
