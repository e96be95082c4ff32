"""Test-session environment: quiet, offline Prefect/DVC settings, and one Prefect API for the session.

Set at import time, before any test module imports prefect (it reads its settings on import).
PREFECT_HOME is always a fresh temporary folder, so tests never touch a developer's Prefect
database; the other settings are defaults that an exported value overrides.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

pytest_plugins = ("browser",)  # the `chromium` fixture for tests that render pages (tests/browser.py)

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="fer-data-test-prefect-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
from pipelines.env import apply_defaults  # noqa: E402  (standard library only)

apply_defaults()  # the project's quiet, offline settings; PREFECT_HOME above wins


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One Prefect test server for the whole session (about 20 s to start); yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()
