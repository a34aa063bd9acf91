"""A repo file replaced by a step: the original kept in the run's journal, then an atomic write."""

from __future__ import annotations

from pathlib import Path

from afasa_ops.files import atomic_write
from afasa_ops.runbook.context import Context


def replace_file(ctx: Context, path: Path, text: str) -> None:
    """Replace a repo file, keeping the original in the run's journal first."""
    if ctx.journal is not None:
        ctx.journal.keep_original(path)
    atomic_write(path, text)
