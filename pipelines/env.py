"""Process environment for Prefect, Dask and DVC: quiet, offline, and kept inside the project.

Applied (as defaults: a value the user exported wins) before `prefect` is imported, because
Prefect reads its settings at import time. Standard library only (with fer_data.env), so
importing this costs nothing on the CLI's fast paths. The library's own defaults (the model
cache) are the library's: fer_data.env.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from fer_data.env import project_root


def defaults(root: Path | None = None) -> dict[str, str]:
    """The settings the project runs with (see README.md, "Environment")."""
    root = root or project_root()
    return {
        # Prefect's database, logs and result storage: project-local and git-ignored, never ~/.prefect.
        "PREFECT_HOME": str(root / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        # A fresh ephemeral API needs 17-30 s on a busy 2-core machine; Prefect's default is 20 s.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        # Prefect's own chatter at WARNING, but our flow and task messages (and fer_data's engine
        # logs, also sent to the Prefect API) at INFO: they are the run's progress report.
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
        "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "fer_data",
        # The same library logs also run outside flows (plain `fer-data curate`, tests): no warning there.
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "DVC_NO_ANALYTICS": "1",
        "DASK_LOGGING__DISTRIBUTED": "warning",
    }


def apply_defaults(environ: MutableMapping[str, str] = os.environ, root: Path | None = None) -> None:
    """Set every default that is not already set."""
    for key, value in defaults(root).items():
        environ.setdefault(key, value)
