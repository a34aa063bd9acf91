"""Generic step kinds: a read-only command check, and a file with wanted content."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from afasa_ops.files import atomic_write, unified_diff
from afasa_ops.findings import Finding
from afasa_ops.infra.shell import last_line
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.files import replace_file
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.step import Params, Step, register


class ShellCheckParams(Params):
    argv: list[str] = Field(min_length=1)
    expect_exit: int = 0
    expect_stdout_contains: str | None = None
    cwd: str | None = None  # relative to the repo
    timeout_s: float = 60.0


@register
class ShellCheck(Step):
    """Runs a read-only command; ok when its exit code (and output) is as expected."""

    kind = "shell.check"
    Params = ShellCheckParams
    verification = True

    def check(self, ctx: Context) -> Assessment:
        p: ShellCheckParams = self.params  # type: ignore[assignment]
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

    def apply(self, ctx: Context) -> Outcome:
        return Outcome(False, "a check changes nothing")


class FileContentParams(Params):
    path: str = Field(description="File inside the repo.")
    content: str


@register
class FileContent(Step):
    """A repo file holds exactly the given content; the original is restored on rollback."""

    kind = "file.content"
    Params = FileContentParams

    def _path(self, ctx: Context) -> Path:
        p: FileContentParams = self.params  # type: ignore[assignment]
        return ctx.repo / p.path

    def check(self, ctx: Context) -> Assessment:
        p: FileContentParams = self.params  # type: ignore[assignment]
        path = self._path(ctx)
        current = path.read_text() if path.exists() else ""
        if current == p.content:
            return Assessment.ok(f"{p.path} is as wanted")
        return Assessment.pending(
            f"{p.path} differs", diff=unified_diff(current, p.content, p.path)
        )

    def apply(self, ctx: Context) -> Outcome:
        p: FileContentParams = self.params  # type: ignore[assignment]
        path = self._path(ctx)
        self._previous = path.read_text() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(ctx, path, p.content)
        return Outcome(True, f"wrote {p.path}")

    def rollback(self, ctx: Context) -> None:
        previous = getattr(self, "_previous", None)
        path = self._path(ctx)
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, previous)
