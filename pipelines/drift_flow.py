"""The `fer-data-drift` flow: check every new batch of a production inbox against the training corpus.

Scheduled by `fer-data serve` from params.yaml `drift.schedule` (cron, timezone, inbox,
reference, out). Each run:

1. builds the reference profile once (or loads a saved `.npz` profile);
2. lists the inbox's complete batches (sub-folders and .parquet files untouched for
   `settle_seconds`) and, for each one the ledger (OUT/drift.sqlite) lets it claim, runs the
   checks into OUT/<batch>/ (drift.json, index.html, batch/) and commits the verdict; a batch
   whose check raised releases its claim, so the next run retries it;
3. rewrites OUT/index.html, every batch checked so far with its verdict;
4. fails (DriftDetected) when a batch failed its checks or could not be checked, so the failure
   is a failed flow run in Prefect and a red row on the index page.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

import pipelines  # noqa: F401  (environment defaults before prefect)
from fer_data import params as params_mod
from fer_data.drift import config, report
from fer_data.drift.ledger import Ledger, ready_batches
from fer_data.drift.run import check_batch, reference_profile
from pipelines.curate_flow import curator
from pipelines.runners import Orchestration

LEDGER = "drift.sqlite"
PROFILE = "reference-profile.npz"
INDEX = "index.html"


class DriftDetected(RuntimeError):
    """A batch failed its drift checks (or could not be checked): the flow run fails."""


@task(name="check-batch", cache_policy=NO_CACHE, persist_result=False)
def check_task(profile_path: str, batch: str, out_dir: str, params_path: str | None) -> dict[str, Any]:
    """Check one batch; its face preprocessing runs on params.yaml's task runner (pipelines.curate_flow.curator)."""
    raw = params_mod.read_raw(params_path)
    doc = check_batch(profile_path, batch, out_dir, raw, curate=curator(Orchestration.from_params(raw)))
    return {"verdict": doc["verdict"], "failed_checks": doc["failed_checks"]}


@flow(name="fer-data-drift", log_prints=False)
def drift_flow(
    inbox: str | None = None,
    reference: str | None = None,
    out_root: str | None = None,
    params_path: str | None = "params.yaml",
) -> dict[str, Any]:
    """Check the inbox's new batches (defaults: params.yaml drift.schedule); returns verdicts per batch."""
    log = get_run_logger()
    raw = params_mod.read_raw(params_path)
    cfg = config.parse(raw)
    sched = cfg.schedule
    inbox, reference = inbox or sched.inbox, reference or sched.reference
    out = Path(out_root or sched.out)
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out / LEDGER)
    batches = ready_batches(inbox, sched.settle_seconds)
    profile_path = _profile(reference, out, cfg, raw)
    results: dict[str, Any] = {}
    for batch in batches:
        claim = ledger.claim(batch.name, sched.claim_timeout_s)
        if claim is None:
            continue
        target = out / batch.name
        try:
            res = check_task(profile_path, str(batch), str(target), params_path)
        except Exception as exc:  # recorded and retried next run; the others are still checked
            ledger.release(batch.name, claim, "".join(traceback.format_exception_only(exc)).strip())
            log.error("drift: batch %s could not be checked: %s", batch.name, exc)
            results[batch.name] = {"verdict": "error", "error": str(exc)}
            continue
        ledger.commit(batch.name, claim, res["verdict"], res["failed_checks"], str(target))
        log.info("drift: batch %s %s %s", batch.name, res["verdict"], ", ".join(res["failed_checks"]))
        results[batch.name] = res
    write_index(ledger, inbox, out)
    bad = {k: v for k, v in results.items() if v["verdict"] != "pass"}
    if bad:
        raise DriftDetected(
            f"{len(bad)} of {len(results)} new batch(es) failed: "
            + "; ".join(f"{k}: {', '.join(v.get('failed_checks') or [v.get('error', '')])}" for k, v in bad.items())
            + f" (index: {out / INDEX})"
        )
    log.info("drift: %d new batch(es) checked, all passed; index %s", len(results), out / INDEX)
    return results


def _profile(reference: str, out: Path, cfg: config.DriftConfig, raw: dict) -> str:
    """The reference profile file: the given .npz, or one built from the corpus for this run."""
    from fer_data.drift.profile import is_profile

    if is_profile(reference):
        return reference
    path = out / PROFILE
    reference_profile(reference, cfg, params_mod.resolve(raw)).save(path)
    return str(path)


def write_index(ledger: Ledger, inbox: str, out: Path) -> Path:
    path = out / INDEX
    tmp = path.with_name(f".{INDEX}.tmp")
    tmp.write_text(report.render_index(ledger.entries(), inbox, out), encoding="utf-8")
    os.replace(tmp, path)
    return path


def deployments(params_path: str | Path, project_dir: str | Path | None = None) -> list[Any]:
    """The drift flow as a deployment on params.yaml `drift.schedule` (none without a `drift:` block)."""
    from prefect.schedules import Cron

    base = Path(project_dir or Path.cwd()).resolve()
    params_path = Path(params_path).resolve()
    raw = params_mod.read_raw(params_path)
    if "drift" not in raw:
        return []
    s = config.parse(raw).schedule
    return [
        drift_flow.to_deployment(
            name="drift",
            schedule=Cron(s.cron, timezone=s.timezone, active=s.active),
            parameters={
                "inbox": str(base / s.inbox),
                "reference": str(base / s.reference),
                "out_root": str(base / s.out),
                "params_path": str(params_path),
            },
            description=f"Check new batches of {s.inbox} against {s.reference} (cron {s.cron!r} {s.timezone})",
            tags=["fer-data", "drift"],
        )
    ]
