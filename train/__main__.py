"""`python -m train fit|evaluate|oof|bench-loader`: the command line of the training hand-off (README.md, "Training")."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from train import fit as fit_mod
from train.bench import bench_loader
from train.params import ParamsError, load


def _fit(args) -> int:
    params = load(args.params)  # validated before any work
    metrics = fit_mod.fit(args.corpus, args.out, params, resume=args.resume, max_steps=args.max_steps)
    if metrics is None:  # stopped by --max-steps, or a torchrun rank other than 0 (rank 0 writes the outputs)
        if args.max_steps is not None:
            print(
                f"stopped after {args.max_steps} steps; checkpoint in {args.out}/checkpoints/last.pt (--resume continues)"
            )
        return 0
    summary = {s: {k: metrics[s][k] for k in ("accuracy", "macro_f1")} for s in ("val", "test") if s in metrics}
    print(json.dumps({"epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"], **summary}))
    return 0


def _evaluate(args) -> int:
    scores, _, _, _ = fit_mod.evaluate(
        args.model, args.corpus, args.split, device=args.device, cache_dir=args.cache_dir
    )
    text = json.dumps(scores, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


def _oof(args) -> int:
    import yaml

    from train.oof import out_of_fold
    from train.oof_params import oof_params

    raw = {}
    if args.params and Path(args.params).exists():
        raw = dict(((yaml.safe_load(Path(args.params).read_text()) or {}).get("review") or {}).get("oof") or {})
    raw.update(
        {k: v for k, v in (("folds", args.folds), ("model", args.model), ("epochs", args.epochs)) if v is not None}
    )
    summary = out_of_fold(args.corpus, args.out, oof_params(raw))  # validated before any work
    print(json.dumps({k: summary[k] for k in ("model", "folds", "rows", "accuracy", "seconds")}))
    return 0


def _bench(args) -> int:
    corpus = args.corpus
    with tempfile.TemporaryDirectory(prefix="fer-train-bench-") as tmp:
        if corpus is None:
            import numpy as np

            from train.synthetic import synthetic_faces, write_corpus

            images, labels = synthetic_faces(args.synthetic, args.size, 7, seed=0)
            corpus = write_corpus(f"{tmp}/corpus", images, labels, np.array(["train"] * len(labels)))
        result = bench_loader(corpus, split=args.split, batch_size=args.batch_size, workers=args.workers,
                              epochs=args.epochs, cache_dir=args.cache_dir or f"{tmp}/cache")  # fmt: skip
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="train from a corpus; writes metrics, plots, checkpoints and model.pt into --out")
    f.add_argument("--corpus", required=True, help="a `fer-data corpus` output folder (manifest.json + shards/)")
    f.add_argument("--out", required=True)
    f.add_argument("--params", default="params.yaml", help="its `train:` block (defaults when absent)")
    f.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt when present")
    f.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all (checkpointed)")
    e = sub.add_parser("evaluate", help="score a model.pt on a corpus split (with the model's flip TTA)")
    e.add_argument("--model", required=True)
    e.add_argument("--corpus", required=True)
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    e.add_argument("--cache-dir", default=None)
    e.add_argument("--out", default=None, help="also write the scores (JSON) here")
    o = sub.add_parser("oof", help="out-of-fold class probabilities of the train split (label review): OUT/oof.parquet")
    o.add_argument("--corpus", required=True)
    o.add_argument("--out", required=True)
    o.add_argument("--params", default="params.yaml", help="its `review.oof:` block (defaults when absent)")
    o.add_argument("--folds", type=int, default=None, help="overrides review.oof.folds")
    o.add_argument("--model", default=None, help="overrides review.oof.model")
    o.add_argument("--epochs", type=int, default=None, help="overrides review.oof.epochs")
    b = sub.add_parser("bench-loader", help="shuffled batches per second from a corpus (or generated shards)")
    b.add_argument("--corpus", default=None, help="default: generate --synthetic faces into a temporary corpus")
    b.add_argument("--synthetic", type=int, default=50_000)
    b.add_argument("--size", type=int, default=48)
    b.add_argument("--split", default="train")
    b.add_argument("--batch-size", type=int, default=128)
    b.add_argument("--workers", type=int, default=0)
    b.add_argument("--epochs", type=int, default=3)
    b.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        return {"fit": _fit, "evaluate": _evaluate, "oof": _oof, "bench-loader": _bench}[args.command](args)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
