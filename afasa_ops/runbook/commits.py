"""Phase 0's rule for every file change a later step makes: show the diff, journal it, then
commit it on the fix branch with the runbook's conventional message (or stage it with
--no-commit)."""

from __future__ import annotations

from dataclasses import dataclass

from afasa_ops.errors import RunbookError
from afasa_ops.runbook.context import Context


@dataclass
class CommitRecord:
    message: str
    paths: list[str]
    commit: str | None  # None when staged only (--no-commit)
    diff: str


def required_message(step_id: str, message: str | None) -> str:
    """A step's commit message, which only the runbook gives (no copy of it lives in code)."""
    if not message:
        raise RunbookError(
            f"step {step_id} commits a change but its params give no `message`",
            hint="add params.message (a conventional commit message) to the step in the runbook",
        )
    return message


def commit_change(
    ctx: Context, paths: list[str], message: str, *, show: bool = True
) -> CommitRecord:
    """Stage `paths` (repo-relative), show and journal the diff, then commit or leave staged.
    `show=False` when the caller already showed the diff (e.g. before asking to apply it)."""
    repo = ctx.git
    repo.stage(paths)
    diff = repo.staged_diff(paths)
    if not diff.strip():
        return CommitRecord(message, paths, None, "")
    if show:
        ctx.say(f"diff for `{message}`:\n{diff}")
    if ctx.journal is not None:
        ctx.journal.write("diff_shown", message=message, paths=paths, diff=diff)
    if ctx.options.no_commit:
        if ctx.journal is not None:
            ctx.journal.write("change_staged", message=message, paths=paths)
        return CommitRecord(message, paths, None, diff)
    sha = repo.commit(message)
    if ctx.journal is not None:
        ctx.journal.write("change_committed", message=message, paths=paths, commit=sha)
    return CommitRecord(message, paths, sha, diff)
