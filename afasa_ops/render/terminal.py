"""Rich tables and a live progress line on a terminal; plain text when piped or NO_COLOR."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

from afasa_ops.redact import redact
from afasa_ops.runbook.model import RunResult, StepResult
from afasa_ops.runbook.model import Status as StepStatus

if TYPE_CHECKING:
    from afasa_ops.runbook.step import AnyStep

STYLE = {
    StepStatus.OK: "green",
    StepStatus.CHANGED: "cyan",
    StepStatus.PENDING: "yellow",
    StepStatus.SKIPPED: "dim",
    StepStatus.WILL_RUN: "blue",
    StepStatus.FAILED: "bold red",
    StepStatus.BLOCKED: "magenta",
}


class ProgressReporter:
    """Shows the step in progress on stderr: a spinner on a terminal, a line otherwise."""

    def __init__(self, console: Console, verb: str) -> None:
        self.console = console
        self.verb = verb
        self._status: Status | None = None

    def step_started(self, step: AnyStep) -> None:
        if self.console.is_terminal:
            self._status = self.console.status(f"{self.verb} {step.id}: {step.title}")
            self._status.start()
        else:
            self.console.print(f"{self.verb} {step.id} ...", markup=False)

    def step_finished(self, result: StepResult) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        line = Text(f"  {result.status.value:<8}", style=STYLE.get(result.status, ""))
        line.append(f" {result.id}  {redact(result.summary)}")
        self.console.print(line)


def render_run(result: RunResult, console: Console, show_diffs: bool = True) -> None:
    table = Table(title=f"{result.mode} {result.run_id}", show_lines=False, expand=False)
    table.add_column("step")
    table.add_column("status")
    table.add_column("summary", overflow="fold")
    for step in result.steps:
        table.add_row(
            step.id,
            Text(step.status.value, style=STYLE.get(step.status, "")),
            Text(redact(step.summary)),
        )
    console.print(table)
    seen: set[tuple[str, str]] = set()
    for step in result.steps:
        for finding in step.findings:
            # Each finding once, however many steps saw it.
            if (finding.code, finding.message) in seen:
                continue
            seen.add((finding.code, finding.message))
            console.print(
                Text(f"  [{step.finding_label(finding)}] {finding.code}: ", style="bold")
                + Text(redact(finding.message))
            )
        if show_diffs and step.diff and step.status in (StepStatus.PENDING, StepStatus.CHANGED):
            console.print(Text(f"--- diff for {step.id}", style="bold"))
            console.print(Text(redact(step.diff)))
    console.print(
        Text(f"result: {result.status}" + (f" - {result.message}" if result.message else ""))
    )
    if result.incident:
        console.print(Text(f"incident bundle: {result.incident}", style="bold red"))
