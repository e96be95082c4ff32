"""Helpers shared by the test modules (imported as `support`; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fer_data import params as params_mod

REPO = Path(__file__).resolve().parents[1]
#: ../shared/realdata beside the checkout; FER_DATA_REALDATA points elsewhere (a git worktree's parent differs).
REALDATA = Path(os.environ.get("FER_DATA_REALDATA") or REPO.parent / "shared" / "realdata")

needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is absent (licensed samples)")


def realdata(*parts: str) -> Path:
    """Path inside ../shared/realdata; skips the test when that part is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def single_process(**overrides) -> params_mod.Params:
    """Params for tests: one process (no pool start-up), small shards so sharding is exercised."""
    raw = {"run": {"workers": 1, "shard_size": 16}}
    return params_mod.resolve(params_mod.deep_merge(raw, overrides))


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def image_of(row: dict, large: bool = False) -> np.ndarray:
    if large:
        return np.frombuffer(row["image_large"], np.uint8).reshape(row["large_size"], row["large_size"])
    return np.frombuffer(row["image"], np.uint8).reshape(row["height"], row["width"])
