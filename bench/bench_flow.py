#!/usr/bin/env python3
"""Parallel speedup of the Prefect `curate` flow: 1 vs N workers on a JAFFE-like input.

    .venv/bin/python bench/bench_flow.py --n 213 --workers 1 2 --repeats 2

Input: N 256x256 TIFFs named like JAFFE (bench_curate.make_jaffe: the real JAFFE sample
cycled when ../shared/realdata is present, else demo portraits). Each configuration runs the
flow through `pipelines.curate_flow.run_curate` with the task runner from --task-runner
(default: process, shard tasks on Prefect's thread pool, face work in fer_data.curate's
fork-server process pool; see pipelines/runners.py), against one Prefect API server started
once for the whole benchmark (its start-up is not counted). Reported per worker count: the
median wall time of the flow run (worker start-up included), images/s, and the speedup over
the first worker count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_curate import make_jaffe

import pipelines  # noqa: F401  (environment defaults before prefect)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=213, help="images (JAFFE has 213)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--task-runner", default="process", choices=["process", "dask", "thread"])
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()

    import yaml

    from pipelines.curate_flow import run_curate
    from pipelines.runners import Orchestration, api

    work = args.work or Path(tempfile.mkdtemp(prefix="fer-data-bench-flow-"))
    root = work / "jaffe"
    origin = make_jaffe(root, args.n) if not root.exists() else "existing"
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump({"labels": {"target_set": "fer2013_7"}}))
    orch = Orchestration(task_runner=args.task_runner)
    results = {}
    with api():
        for workers in args.workers:
            times = []
            for r in range(args.repeats):
                start = time.perf_counter()
                m = run_curate("jaffe", work / f"out-{workers}-{r}", str(root), str(params), workers, orch)
                times.append(time.perf_counter() - start)
            results[workers] = {
                "seconds": round(statistics.median(times), 2),
                "images": m["read"],
                "curated": m["curated"],
                "shards": m["shards"],
                "runs": [round(t, 2) for t in times],
            }
    base = results[args.workers[0]]["seconds"]
    for workers, res in results.items():
        res["images_per_second"] = round(res["images"] / res["seconds"], 1)
        res["speedup"] = round(base / res["seconds"], 2)
    print(
        json.dumps(
            {"input": f"{args.n} JAFFE-like TIFFs ({origin})", "task_runner": args.task_runner, "results": results},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
