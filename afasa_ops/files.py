"""File writes every layer may use: a unified diff to show first, and an atomic write."""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path


def unified_diff(old: str, new: str, rel_path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{rel_path}",
            tofile=f"b/{rel_path}",
        )
    )


def atomic_write(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write beside the target, fsync, then rename: a reader never sees half a file.
    An existing file keeps its permissions; a new one gets `mode` (default 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = path.stat().st_mode & 0o7777 if path.exists() else (mode or 0o644)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".afasa-ops.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, keep)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
