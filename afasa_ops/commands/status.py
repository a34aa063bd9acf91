"""`afasa-ops status`: recent runs from the journal, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from afasa_ops.runbook.context import Context
from afasa_ops.runbook.journal import JournalReader
from afasa_ops.runbook.model import RunResult


@dataclass
class StatusResult:
    runs: list[RunResult]


def status(ctx: Context, limit: int = 10) -> StatusResult:
    reader = JournalReader(ctx.repo)
    ids = reader.run_ids()[-limit:]
    return StatusResult([reader.read(i) for i in reversed(ids)])
