#!/usr/bin/env python3
"""Entry point for a fresh machine: sets up .venv (once), then runs the demo or the tests.

    python3 run.py demo     # curate the embedded sample data end to end
    python3 run.py test     # ruff (lint + format check), then the test suite

Only the standard library is used here, because nothing else is installed yet. The venv is
rebuilt when requirements*.txt or pyproject.toml change (a hash stamp in .venv).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".fer-data-installed"
INPUTS = ("requirements.txt", "requirements-dev.txt", "pyproject.toml")


def _digest() -> str:
    h = hashlib.sha256()
    for name in INPUTS:
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def _pip(*args: str) -> None:
    # pip's "Location ... is ignored" notices about local mirrors are noise: keep them in a log.
    log = VENV / "pip-install.log"
    with open(log, "a") as fh:
        code = subprocess.call(
            [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    if code:
        sys.exit(f"pip install {' '.join(args)} failed (exit {code}); see {log}")


def ensure_venv() -> None:
    """Create and fill .venv in the order the stack needs (see README: dependency notes)."""
    digest = _digest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if sys.version_info[:2] < (3, 11):  # noqa: UP036 - run.py is what an older python3 runs first
        sys.exit("fer-data needs Python 3.11 or newer")
    print("Setting up .venv (first run: about 5 minutes) ...", flush=True)
    if not (BIN / "python").exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    _pip("setuptools<81", "wheel")
    # dlib-bin is a prebuilt dlib; face-recognition names `dlib` (a long source build), so it
    # goes in afterwards with --no-deps.
    _pip("-r", str(ROOT / "requirements.txt"), "-r", str(ROOT / "requirements-dev.txt"))
    _pip("--no-deps", "face-recognition==1.3.0")
    _pip("--no-deps", "--no-build-isolation", "-e", str(ROOT))
    # One-off caches (the landmark model's arrays, its compiled evaluator): paid here, not by a first run.
    subprocess.check_call([str(BIN / "python"), "-c", "import fer_data.faces.warm"], cwd=ROOT, env=env())
    # Great Expectations Data Docs' scripts and styles (npm packages, ~4 MB kept) so they open offline;
    # without npm or a registry the docs still work online, so a failure here only warns.
    subprocess.call([str(BIN / "python"), "-m", "fer_data.reports.gx_offline"], cwd=ROOT, env=env())
    STAMP.write_text(digest)
    print("  .venv ready", flush=True)


def env() -> dict[str, str]:
    """Quiet, offline-safe settings for Prefect, DVC and Dask, all kept inside the project."""
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e["VIRTUAL_ENV"] = str(VENV)
    _project_env().apply_defaults(e, ROOT)
    return e


def _project_env():
    """pipelines/env.py, loaded by path: it (and fer_data.env, beside this file) is standard-library only, and the venv may not exist yet."""
    spec = importlib.util.spec_from_file_location("_fer_data_env", ROOT / "pipelines" / "env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lint() -> int:
    """ruff's lint and format check (configured in pyproject.toml), before the tests: a style slip fails fast."""
    for args in (["check", "--quiet"], ["format", "--check", "--quiet"]):
        code = subprocess.call([str(BIN / "ruff"), *args, "."], cwd=ROOT)
        if code:
            print(f"ruff {args[0]} failed: run `.venv/bin/ruff {args[0]} {'--fix ' if args[0] == 'check' else ''}.`")
            return code
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    ensure_venv()
    cmd, rest = argv[0], argv[1:]
    if cmd == "setup":
        return 0
    if cmd == "test":
        return lint() or subprocess.call([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT, env=env())
    return subprocess.call([str(BIN / "fer-data"), "run-demo", *rest], cwd=ROOT, env=env())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
