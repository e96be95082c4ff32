"""The output folder of a run: one writer at a time, staged beside it, published by one switch.

A run takes an exclusive lock (`.OUT.lock` beside OUT: a second run fails at once and says
which process holds it), writes everything into a staging folder beside OUT
(`.OUT.staging-*`, same file system), and publishes by exchanging the two folders with one
`renameat2(RENAME_EXCHANGE)`: a reader or a crash sees the old set of tables and metrics or
the new one, never a mix. Where the file system cannot exchange, two renames are used and a
crash between them is repaired by the next run (the old folder is put back). The next run
also removes staging folders a killed run left behind.

Failures of the disk (full, read-only, over quota) become one `OutputError` that names the
real cause, instead of an Arrow error deep in a worker's traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

#: File in a staging folder naming it; found in OUT after an exchange, it tells a retried publish
#: that the switch happened already. Removed right after the switch, so OUT's bytes do not vary.
MARKER = ".fer-data-publish"

#: Disk conditions a user must fix (no retry helps): reported as one clear OutputError.
DISK_ERRORS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system"}
if hasattr(errno, "EDQUOT"):
    DISK_ERRORS[errno.EDQUOT] = "disk quota exceeded"

_ERRNO_IN_TEXT = re.compile(r"\[?errno (\d+)\]?", re.IGNORECASE)  # Arrow: "Detail: [errno 28] No space ..."

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


class OutputError(RuntimeError):
    """The output folder cannot be written now: busy (another run), full or read-only."""


def sibling(out: Path, kind: str) -> Path:
    """`.OUT.KIND` beside OUT (lock, staging-*, old-*): outside the folder DVC hashes."""
    return out.parent / f".{out.name}.{kind}"


def target_of(staging: Path) -> Path:
    """OUT, for a staging folder `.OUT.staging-*` beside it (what messages name)."""
    return staging.parent / staging.name[1:].rsplit(".staging-", 1)[0]


def disk_errno(exc: BaseException) -> int | None:
    """The disk condition behind EXC (its errno, or the one Arrow writes into its message), if any."""
    code = getattr(exc, "errno", None)
    if code not in DISK_ERRORS:
        found = _ERRNO_IN_TEXT.search(str(exc))
        code = int(found.group(1)) if found else None
    return code if code in DISK_ERRORS else None


@contextlib.contextmanager
def disk_errors(out: Path | str) -> Iterator[None]:
    """Turn a full or read-only disk under OUT into one OutputError naming the cause."""
    try:
        yield
    except OSError as exc:
        code = disk_errno(exc)
        if code is None:
            raise
        name = errno.errorcode.get(code, str(code))
        raise OutputError(
            f"cannot write {out}: {DISK_ERRORS[code]} ({name}); free space or choose another --out"
        ) from None


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold OUT's lock for a run; a second run fails at once with the holder's pid (it does not wait).

    flock on a file beside OUT (OUT itself is swapped by the publish). The lock dies with the
    process, so a killed run never leaves OUT locked.
    """
    with disk_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(sibling(out, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise OutputError(
                f"{out} is being written by another fer-data run (pid {holder}); wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def clean_stale(out: Path) -> None:
    """Remove what killed runs left (staging folders; an old output a crash left outside OUT is put back)."""
    for path in sorted(out.parent.glob(f".{out.name}.staging-*")):
        shutil.rmtree(path, ignore_errors=True)
    old = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if old and not out.exists():
        os.rename(old.pop(), out)  # the fallback switch stopped between its two renames
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    if out.is_dir():
        (out / MARKER).unlink(missing_ok=True)
        for legacy in [*out.glob(".staging-*"), *out.glob(".old-*")]:  # layout of earlier versions
            shutil.rmtree(legacy, ignore_errors=True) if legacy.is_dir() else legacy.unlink()


def new_staging(out: Path) -> Path:
    """An empty staging folder beside OUT, marked with its own name."""
    with disk_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = sibling(out, f"staging-{uuid.uuid4().hex[:12]}")
        staging.mkdir()
        (staging / MARKER).write_text(staging.name)
    return staging


def switched(staging: Path, out: Path) -> bool:
    """Whether STAGING was published into OUT already (a retried publish after the switch)."""
    marker = out / MARKER
    return marker.is_file() and marker.read_text() == staging.name


def switch(staging: Path, out: Path, ours: Iterable[str]) -> None:
    """Make STAGING's content OUT's content in one step, and remove the old content.

    Entries of the old OUT that the run does not write (OURS names what it writes; DVC keeps a
    .gitignore there) are carried over into the new one first.
    """
    with disk_errors(out):
        if not switched(staging, out):
            _carry_over(out, staging, set(ours) | {MARKER})
            if out.exists():
                _exchange(staging, out)
            else:
                os.rename(staging, out)
        (out / MARKER).unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)  # the old content, after an exchange


def _carry_over(out: Path, staging: Path, ours: set[str]) -> None:
    if not out.is_dir():
        return
    for entry in out.iterdir():
        if entry.name in ours or (staging / entry.name).exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, staging / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, staging / entry.name, follow_symlinks=False)


def _exchange(staging: Path, out: Path) -> None:
    """renameat2(RENAME_EXCHANGE): both names swap their folders atomically (Linux >= 3.15)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is not None and fn(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(out), _RENAME_EXCHANGE) == 0:
        return
    code = ctypes.get_errno() if fn is not None else errno.ENOSYS
    if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(code, os.strerror(code), str(out))
    # No exchange on this file system: two renames; clean_stale() repairs a crash between them.
    old = sibling(out, f"old-{uuid.uuid4().hex[:12]}")
    os.rename(out, old)
    os.rename(staging, out)
    os.rename(old, staging)


@contextlib.contextmanager
def publishing(out: Path | str, ours: Iterable[str]) -> Iterator[Path]:
    """A staging folder for a whole output (corpus, review) that becomes OUT in one switch on success.

    The curated tables' rules for any output: one run at a time (the lock), what a killed run
    left is cleaned first, and a failure leaves the previous OUT as it was. OURS names what the
    run writes (anything else already in OUT, such as DVC's .gitignore, is carried over).
    """
    out = Path(out)
    with exclusive(out):
        clean_stale(out)
        staging = new_staging(out)
        try:
            yield staging
            switch(staging, out, ours)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
