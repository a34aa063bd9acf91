"""`afasa-ops run`: converge the selected steps under the target's lock, journaled."""

from __future__ import annotations

from afasa_ops.runbook.context import Context
from afasa_ops.runbook.loader import Runbook
from afasa_ops.runbook.model import RunResult
from afasa_ops.runbook.runner import Reporter, Runner, Selection


def run(
    runbook: Runbook, ctx: Context, selection: Selection, reporter: Reporter | None = None
) -> RunResult:
    return Runner(runbook, ctx, reporter).run(selection)
