"""`afasa-ops report`: the run a report is rendered from (render/ draws it)."""

from __future__ import annotations

from afasa_ops.errors import UsageError
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.journal import JournalReader
from afasa_ops.runbook.model import RunResult


def load_run(ctx: Context, run_id: str | None) -> RunResult | None:
    reader = JournalReader(ctx.repo)
    # `latest` names the newest run, as a run id would.
    return reader.read(run_id) if run_id and run_id != "latest" else reader.latest()


def report(ctx: Context, run_id: str | None = None) -> RunResult:
    """The run to report on: the given one, else the latest."""
    run = load_run(ctx, run_id)
    if run is None:
        raise UsageError("no runs recorded yet; run `afasa-ops run` first")
    return run
