"""Which inbox batches have been checked: a small SQLite ledger with a claim/commit protocol.

A run claims a batch before checking it and commits the verdict after its report is written.
So across restarts a batch is never checked twice (a committed batch is never claimed again)
and never skipped (a claim whose process died, or that is older than `claim_timeout_s`, is
taken over by the next run; a check that raised releases its claim, so the next run retries).
Claims are made in one `BEGIN IMMEDIATE` transaction: two runs cannot claim the same batch.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    name TEXT PRIMARY KEY,          -- the batch's entry in the inbox (folder or Parquet file name)
    state TEXT NOT NULL,            -- claimed | done
    claim_id TEXT,
    host TEXT,
    pid INTEGER,
    claimed_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    verdict TEXT,                   -- pass | fail (drift.json), once done
    failed_checks TEXT,             -- JSON list
    report TEXT,                    -- the batch's report folder
    finished_at REAL,
    last_error TEXT                 -- why the last attempt raised (the claim was released)
)
"""


@dataclass(frozen=True)
class Entry:
    name: str
    state: str
    attempts: int
    verdict: str | None
    failed_checks: list[str]
    report: str | None
    finished_at: float | None
    last_error: str | None


class Ledger:
    """The checked-batches table of one inbox (a file next to the reports)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as db:
            db.execute(SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def claim(self, name: str, timeout_s: float, now: float | None = None) -> str | None:
        """A claim id when this run may check NAME now; None when it is done or another live run holds it."""
        now = time.time() if now is None else now
        claim_id = uuid.uuid4().hex
        with self._tx() as db:
            row = db.execute("SELECT state, host, pid, claimed_at FROM batches WHERE name = ?", (name,)).fetchone()
            if row is not None:
                state, host, pid, claimed_at = row
                if state == "done" or not _stale(host, pid, claimed_at, now, timeout_s):
                    return None
            db.execute(
                "INSERT INTO batches (name, state, claim_id, host, pid, claimed_at, attempts) "
                "VALUES (?, 'claimed', ?, ?, ?, ?, 1) ON CONFLICT(name) DO UPDATE SET state = 'claimed', "
                "claim_id = excluded.claim_id, host = excluded.host, pid = excluded.pid, "
                "claimed_at = excluded.claimed_at, attempts = attempts + 1",
                (name, claim_id, socket.gethostname(), os.getpid(), now),
            )
        return claim_id

    def commit(self, name: str, claim_id: str, verdict: str, failed_checks: list[str], report: str) -> None:
        """Record the verdict; refuses when the claim was taken over meanwhile (that run records it)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE batches SET state = 'done', verdict = ?, failed_checks = ?, report = ?, finished_at = ?, "
                "last_error = NULL WHERE name = ? AND claim_id = ? AND state = 'claimed'",
                (verdict, json.dumps(failed_checks), report, time.time(), name, claim_id),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"drift ledger: the claim on batch {name!r} was taken over by another run")

    def release(self, name: str, claim_id: str, error: str) -> None:
        """Give a claim up after the check raised: the next run checks the batch again."""
        with self._tx() as db:
            db.execute(
                "UPDATE batches SET state = 'released', claim_id = NULL, pid = NULL, last_error = ? "
                "WHERE name = ? AND claim_id = ?",
                (error[-2000:], name, claim_id),
            )

    def entries(self) -> list[Entry]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT name, state, attempts, verdict, failed_checks, report, finished_at, last_error "
                "FROM batches ORDER BY name"
            ).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], json.loads(r[4] or "[]"), r[5], r[6], r[7]) for r in rows]


def _stale(host: str | None, pid: int | None, claimed_at: float | None, now: float, timeout_s: float) -> bool:
    """A claim nobody works on: released, too old, or held by a process of this host that is gone."""
    if pid is None or claimed_at is None or now - claimed_at > timeout_s:
        return True
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def ready_batches(inbox: str | Path, settle_seconds: float, now: float | None = None) -> list[Path]:
    """Batches in the inbox (sub-folders and .parquet files), sorted by name, that nobody is still writing.

    A batch counts as complete when nothing in it changed for `settle_seconds`; names starting
    with `.` or `_` are the writer's temporary entries and are ignored.
    """
    now = time.time() if now is None else now
    root = Path(inbox)
    if not root.is_dir():
        raise FileNotFoundError(f"drift.schedule.inbox: {root} is not a folder")
    out = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")) or not (entry.is_dir() or entry.suffix == ".parquet"):
            continue
        if now - _newest_mtime(entry) >= settle_seconds:
            out.append(entry)
    return out


def _newest_mtime(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    return max([path.stat().st_mtime] + [p.stat().st_mtime for p in path.rglob("*")])
