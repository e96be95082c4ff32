"""`fer-data serve`: the pipeline flow as deployments with cron schedules from params.yaml.

    schedules:
      nightly:                 # deployment name
        cron: "0 2 * * *"
        timezone: UTC
        sources: [folder]      # [] or absent: every source in `sources`
        active: true

Schedules need a Prefect server with its scheduler running; the temporary in-process API that
plain flow runs use has none (a served schedule would never fire). `serve` therefore uses
PREFECT_API_URL when set, and otherwise starts `prefect server start` on 127.0.0.1 for as long
as it serves: the UI at that address then shows the deployments and their next runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import RootModel

from fer_data import params as params_mod
from fer_data.params import Block, Bool, ParamsError, Str, param, validated

DEFAULT_PORT = 4200


class ScheduleParams(Block):
    """One entry of params.yaml's `schedules:` block."""

    cron: Str = param(..., 'a cron expression, e.g. "0 2 * * *"', "when the pipeline runs")
    timezone: Str = param("UTC", "an IANA time zone name", "the cron expression's time zone")
    sources: list[Str] = param([], "a list of source names ([]: all)", "the sources this deployment curates")
    active: Bool = param(True, "true or false", "false keeps the deployment but pauses its schedule")


#: The `schedules:` block (declared as a `fer_data.params` entry point in pyproject.toml).
SchedulesParams = RootModel[dict[str, ScheduleParams]]


@dataclass(frozen=True)
class Schedule:
    """One `schedules:` entry of params.yaml."""

    name: str
    cron: str
    timezone: str = "UTC"
    sources: list[str] = field(default_factory=list)
    active: bool = True

    @classmethod
    def parse(cls, name: str, spec: Mapping[str, Any]) -> Schedule:
        try:
            entry = validated(ScheduleParams, spec, f"schedules.{name}", None)
        except ParamsError as exc:
            raise ValueError(str(exc)) from None
        return cls(name, entry.cron, entry.timezone, list(entry.sources), entry.active)


def schedules(raw: Mapping[str, Any]) -> list[Schedule]:
    return [Schedule.parse(name, spec or {}) for name, spec in (raw.get("schedules") or {}).items()]


def deployments(params_path: str | Path, project_dir: str | Path | None = None) -> list[Any]:
    """RunnerDeployments of the pipeline flow, one per schedule, with absolute paths as parameters."""
    from prefect.schedules import Cron

    from pipelines.pipeline_flow import DEFAULT_CURATED, DEFAULT_MANIFEST, DEFAULT_REPORT, pipeline_flow

    base = Path(project_dir or Path.cwd()).resolve()
    params_path = Path(params_path).resolve()
    raw = params_mod.read_raw(params_path)
    out = []
    for s in schedules(raw):
        out.append(
            pipeline_flow.to_deployment(
                name=s.name,
                schedule=Cron(s.cron, timezone=s.timezone, active=s.active),
                parameters={
                    "sources": s.sources or None,
                    "params_path": str(params_path),
                    "curated_root": str(base / DEFAULT_CURATED),
                    "report_dir": str(base / DEFAULT_REPORT),
                    "manifest_path": str(base / DEFAULT_MANIFEST),
                },
                description=f"Curate {', '.join(s.sources) or 'every configured source'}, validate, write the manifest "
                f"(cron {s.cron!r} {s.timezone}, from {params_path.name})",
                tags=["fer-data"],
            )
        )
    return out


def next_runs(s: Schedule, n: int = 3, start: dt.datetime | None = None) -> list[dt.datetime]:
    """The next N times a schedule fires (computed locally; no server needed)."""
    from prefect.server.schemas.schedules import CronSchedule

    sched = CronSchedule(cron=s.cron, timezone=s.timezone)
    return asyncio.run(sched.get_dates(n=n, start=start or dt.datetime.now(dt.UTC)))


def describe(raw: Mapping[str, Any]) -> str:
    """A table of schedules and their next runs, for `fer-data serve --check`."""
    rows = []
    for s in schedules(raw):
        when = ", ".join(d.strftime("%Y-%m-%d %H:%M %Z") for d in next_runs(s)) if s.active else "paused"
        rows.append(f"{s.name}\tcron {s.cron!r} {s.timezone}\tsources: {', '.join(s.sources) or 'all'}\tnext: {when}")
    return "\n".join(rows) or "no schedules in params.yaml (add a `schedules:` block)"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def prefect_server(port: int = DEFAULT_PORT, timeout: float = 180.0) -> Iterator[str]:
    """A `prefect server start` child process (scheduler included) on 127.0.0.1:PORT; yields its API URL."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        raise RuntimeError(f"something already serves {url}: export PREFECT_API_URL={url} to use it, or pick --port")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url):
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited ({proc.returncode}): {(proc.stderr.read() or '')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.5)
        os.environ["PREFECT_API_URL"] = url
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve(params_path: str | Path, port: int = DEFAULT_PORT, limit: int = 1) -> None:
    """Serve the scheduled deployments until interrupted (Ctrl-C pauses their schedules)."""
    from prefect import serve as prefect_serve

    from pipelines.runners import api_url

    deps = deployments(params_path)
    if not deps:
        raise ValueError("params.yaml has no `schedules:` entries to serve")
    # limit=1: runs of the pipeline write the same folders, so they queue instead of overlapping.
    if api_url():
        prefect_serve(*deps, limit=limit)
        return
    with prefect_server(port) as url:
        print(f"Prefect UI: {url.removesuffix('/api')} (server started by fer-data serve; stops with it)", flush=True)
        prefect_serve(*deps, limit=limit)
