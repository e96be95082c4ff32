"""Where the library keeps its own files, wherever it is called from (CLI, flows, tests, notebooks).

Standard library only: `run.py` and the orchestration's environment (pipelines.env) import it
before anything else is installed or imported.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The source checkout this package runs from, or the working directory when installed elsewhere."""
    here = Path(__file__).resolve().parents[1]
    return here if is_checkout(here) else Path.cwd()


def is_checkout(path: Path) -> bool:
    return (path / "pyproject.toml").exists() and (path / "fer_data").is_dir()


def cache_dir() -> Path:
    """The landmark model's parsed arrays and other one-off caches.

    FER_DATA_CACHE when set; else `.cache/fer-data` in the source checkout (git-ignored, paid
    once by `run.py setup`); else $XDG_CACHE_HOME/fer-data or ~/.cache/fer-data.
    """
    if os.environ.get("FER_DATA_CACHE"):
        return Path(os.environ["FER_DATA_CACHE"])
    checkout = Path(__file__).resolve().parents[1]
    if is_checkout(checkout):
        return checkout / ".cache" / "fer-data"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fer-data"
