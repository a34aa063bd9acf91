"""`afasa-ops status` as a table."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from afasa_ops.commands.status import StatusResult


def render_status(result: StatusResult, out: Console) -> None:
    from rich.table import Table

    table = Table(title="afasa-ops runs")
    # Run ids whole (never cut to fit): they are what `afasa-ops report RUN` takes.
    table.add_column(
        "run",
        no_wrap=True,
        overflow="fold",
        min_width=len(result.runs[0].run_id) if result.runs else 3,
    )
    for col in ("mode", "status", "phases", "started", "steps"):
        table.add_column(col)
    for r in result.runs:
        done = sum(1 for s in r.steps if s.status.value in ("ok", "changed", "skipped"))
        table.add_row(
            r.run_id, r.mode, r.status, ",".join(r.phases), r.started_at, f"{done}/{len(r.steps)}"
        )
    out.print(table)
