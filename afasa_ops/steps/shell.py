"""Step kind `shell.check`: a read-only command whose exit code (and output) is as expected."""

from __future__ import annotations

from pydantic import Field

from afasa_ops.findings import Finding
from afasa_ops.infra.shell import last_line
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment
from afasa_ops.runbook.step import Params, ReadOnlyStep, register


class ShellCheckParams(Params):
    argv: list[str] = Field(min_length=1)
    expect_exit: int = 0
    expect_stdout_contains: str | None = None
    cwd: str | None = None  # relative to the repo
    timeout_s: float = 60.0


@register
class ShellCheck(ReadOnlyStep[ShellCheckParams]):
    """Runs a read-only command; ok when its exit code (and output) is as expected."""

    kind = "shell.check"
    Params = ShellCheckParams
    verification = True

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        cwd = ctx.repo / p.cwd if p.cwd else ctx.repo
        record = ctx.shell.run(p.argv, cwd=cwd, timeout_s=p.timeout_s)
        if record.exit_code != p.expect_exit:
            return Assessment.blocked(
                f"`{' '.join(record.argv)}` exited {record.exit_code}, expected {p.expect_exit}: "
                f"{last_line(record.stderr or record.stdout)}",
                [Finding.error("shell.unexpected_exit", f"exit {record.exit_code}")],
            )
        if p.expect_stdout_contains and p.expect_stdout_contains not in record.stdout:
            return Assessment.blocked(
                f"output of `{' '.join(record.argv)}` lacks {p.expect_stdout_contains!r}",
                [Finding.error("shell.unexpected_output", last_line(record.stdout))],
            )
        return Assessment.ok(f"`{' '.join(record.argv)}` as expected")
