"""Scratch files of the report worker: private, locked while in use, swept when abandoned.

A report is rendered into a scratch file before its upload; that file holds a tenant's data.
It is created 0600 (O_EXCL, O_NOFOLLOW) in the worker's own directory, 0700 and owned by the
worker's user: `[workers] workdir`, or `<tmp>/afasa-ops-report-<uid>` when unset, never the
shared temp folder itself. While a file is in use its worker holds an flock on it; the kernel
drops the lock when the process dies (`kill -9` included), so the sweep at start removes
exactly the files of dead workers and never a file a live worker is writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from afasa_ops.errors import ConfigError

PREFIX = "afasa-report-"
SUFFIX = ".part"


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / f"afasa-ops-report-{os.getuid()}"


def prepare_workdir(configured: Path | None) -> Path:
    """The private scratch directory, created if missing, checked, and swept."""
    workdir = configured or default_workdir()
    try:
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(workdir)
    except OSError as exc:
        raise ConfigError(
            f"[workers] workdir {workdir}: cannot create it: {exc.strerror}"
        ) from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"[workers] workdir {workdir} is not a directory (a symlink?)")
    if st.st_uid != os.getuid():
        raise ConfigError(
            f"[workers] workdir {workdir} belongs to uid {st.st_uid}, not this worker's "
            f"{os.getuid()}: another user could read the reports",
            hint="set [workers] workdir to a directory of the worker's own",
        )
    if st.st_mode & 0o077:
        os.chmod(workdir, 0o700)  # ours, but readable by others: close it
    sweep(workdir)
    return workdir


def sweep(workdir: Path) -> list[Path]:
    """Remove scratch files no live worker holds; returns what was removed."""
    removed: list[Path] = []
    for path in sorted(workdir.glob(f"{PREFIX}*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live worker is writing it
        try:
            path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def scratch_file(workdir: Path, label: str) -> Iterator[Path]:
    """A new 0600 file in workdir, locked for as long as the block runs, removed after."""
    path = workdir / f"{PREFIX}{label}.{uuid.uuid4().hex[:8]}{SUFFIX}"
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
