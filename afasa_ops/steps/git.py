"""Phase 0 step kinds: a clean tree, the pre-audit tag, the fix branch, the tag pushed.

The tag marks the starting commit (what `afasa-ops rollback` returns to); the fix branch is
checked out so later phases commit their changes on it (runbook/commits.commit_change).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from afasa_ops.errors import ConfigError, DriverError
from afasa_ops.findings import Finding
from afasa_ops.infra.git import GitRepo
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.params import runbook_parameter
from afasa_ops.runbook.step import Params, ReadOnlyStep, Step, register

PRE_AUDIT_EVENT = "pre_audit_tag"


def operator_date(ctx: Context) -> str:
    """The operator's local date (or [runbook] timezone's); a `date` parameter overrides it."""
    given = ctx.params.get("date")
    if given:
        return str(given)
    zone = ctx.settings.runbook.timezone
    if zone in ("", "local"):
        return datetime.now().astimezone().date().isoformat()
    try:
        return datetime.now(ZoneInfo(zone)).date().isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"[runbook] timezone = {zone!r} is not a known IANA zone",
            hint="use a name such as Europe/Berlin, or local",
        ) from None


def dated_name(ctx: Context, param: str) -> str:
    """A runbook parameter's name template (`pre-audit-{date}`) filled with the date."""
    template = runbook_parameter(ctx, param)
    try:
        return template.format(date=operator_date(ctx))
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"runbook parameter {param} = {template!r}: only {{date}} may be used ({exc})"
        ) from None


def short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


@register
class CleanTree(ReadOnlyStep[Params]):
    """Uncommitted changes block the phase unless --allow-dirty says to go on."""

    kind = "git.clean"

    def check(self, ctx: Context) -> Assessment:
        dirty = ctx.git.dirty_files()
        if not dirty:
            return Assessment.ok("the work tree is clean")
        shown = ", ".join(dirty[:20]) + (f" (+{len(dirty) - 20} more)" if len(dirty) > 20 else "")
        finding_data = {"files": dirty}
        if ctx.options.allow_dirty:
            return Assessment.ok(
                f"proceeding with {len(dirty)} uncommitted change(s) because of --allow-dirty: "
                + shown,
                [Finding.warning("git.dirty_allowed", f"uncommitted: {shown}", **finding_data)],
            )
        return Assessment.blocked(
            f"uncommitted changes: {shown}; commit or stash them, or pass --allow-dirty",
            [Finding.error("git.dirty", f"uncommitted: {shown}", **finding_data)],
        )


class NameParams(Params):
    param: str = Field(default="", description="Runbook parameter holding the name template.")


@register
class PreAuditTag(Step[NameParams]):
    """The rollback point: an annotated tag on the starting commit."""

    kind = "git.tag"
    Params = NameParams

    def name(self, ctx: Context) -> str:
        p = self.params
        return dated_name(ctx, p.param or "tag")

    def check(self, ctx: Context) -> Assessment:
        repo = ctx.git
        tag = self.name(ctx)
        head = repo.head_commit()
        at = repo.tag_commit(tag)
        if at is None:
            return Assessment.pending(
                f"tag {tag} will mark the starting commit {short(head)}",
                [Finding.info("git.tag_missing", f"{tag} does not exist yet", tag=tag)],
            )
        # On a re-run HEAD has moved on along the fix branch: the tag must be behind it.
        if at == head or (repo.is_ancestor(at, head) and self._on_fix_branch(ctx, repo)):
            return Assessment.ok(f"tag {tag} marks {short(at)}")
        return Assessment.blocked(
            f"tag {tag} exists at {short(at)}, but the starting commit is {short(head)}; "
            "delete or rename that tag, or set the `tag` parameter",
            [
                Finding.error(
                    "git.tag_elsewhere", f"{tag}: {at} != {head}", tag=tag, tag_commit=at, head=head
                )
            ],
        )

    def _on_fix_branch(self, ctx: Context, repo: GitRepo) -> bool:
        return repo.current_branch() == dated_name(ctx, "branch")

    def apply(self, ctx: Context) -> Outcome:
        repo = ctx.git
        tag = self.name(ctx)
        head = repo.head_commit()
        repo.create_tag(tag, head, message=f"afasa-ops: state before the audit ({tag})")
        if ctx.journal is not None:
            ctx.journal.write(PRE_AUDIT_EVENT, tag=tag, commit=head, branch=repo.current_branch())
        return Outcome(
            True, f"tagged {short(head)} as {tag}", artifacts={"tag": tag, "commit": head}
        )


@register
class FixBranch(Step[NameParams]):
    """The branch later phases commit on, created at the starting commit and checked out."""

    kind = "git.branch"
    Params = NameParams

    def name(self, ctx: Context) -> str:
        p = self.params
        return dated_name(ctx, p.param or "branch")

    def _start(self, ctx: Context, repo: GitRepo) -> str:
        tag = dated_name(ctx, "tag")
        return repo.tag_commit(tag) or repo.head_commit()

    def check(self, ctx: Context) -> Assessment:
        repo = ctx.git
        branch = self.name(ctx)
        start = self._start(ctx, repo)
        at = repo.branch_commit(branch)
        if at is None:
            return Assessment.pending(
                f"branch {branch} will be created at {short(start)} and checked out",
                [Finding.info("git.branch_missing", f"{branch} does not exist yet")],
            )
        if not repo.is_ancestor(start, at):
            return Assessment.blocked(
                f"branch {branch} exists at {short(at)}, which does not contain the starting "
                f"commit {short(start)}; rename that branch or set the `branch` parameter",
                [
                    Finding.error(
                        "git.branch_elsewhere",
                        f"{branch}: {at} lacks {start}",
                        branch=branch,
                        branch_commit=at,
                        start=start,
                    )
                ],
            )
        if repo.current_branch() != branch:
            return Assessment.pending(
                f"branch {branch} exists at {short(at)}; it will be checked out",
                [Finding.info("git.branch_not_checked_out", f"on {repo.current_branch()}")],
            )
        return Assessment.ok(f"on {branch} ({short(at)})")

    def apply(self, ctx: Context) -> Outcome:
        repo = ctx.git
        branch = self.name(ctx)
        previous = repo.current_branch()
        created = False
        if repo.branch_commit(branch) is None:
            repo.create_branch(branch, self._start(ctx, repo))
            created = True
        repo.checkout(branch)
        if ctx.journal is not None:
            ctx.journal.write("fix_branch", branch=branch, previous_branch=previous)
        verb = "created and checked out" if created else "checked out"
        return Outcome(True, f"{verb} {branch} (was on {previous or 'a detached HEAD'})")


class PushParams(Params):
    remote: str | None = Field(default=None, description="Remote to push to; origin or the first.")
    timeout_s: float = 120.0


@register
class PushTag(Step[PushParams]):
    """Push the pre-audit tag so the rollback point survives this machine."""

    kind = "git.push_tag"
    Params = PushParams
    needs_confirmation = True

    def _remote(self, repo: GitRepo) -> str | None:
        p = self.params
        remotes = repo.remotes()
        if p.remote:
            return p.remote if p.remote in remotes else None
        return "origin" if "origin" in remotes else (remotes[0] if remotes else None)

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        repo = ctx.git
        remote = self._remote(repo)
        if remote is None:
            wanted = (
                f"remote {p.remote!r} is not configured" if p.remote else "no remote is configured"
            )
            return Assessment.skipped(f"{wanted}: the tag stays local")
        tag = dated_name(ctx, "tag")
        local = repo.tag_commit(tag)
        if local is None:
            return Assessment.pending(f"tag {tag} will be pushed to {remote} once created")
        try:
            remote_at = repo.remote_tag_commit(remote, tag, p.timeout_s)
        except DriverError as exc:
            # Unreachable now: the push will say whether it really is (and fail the step).
            return Assessment.pending(
                f"tag {tag} will be pushed to {remote} (its tags could not be listed: {exc})"
            )
        if remote_at == local:
            return Assessment.ok(f"{remote} has {tag} at {short(local)}")
        if remote_at is not None:
            return Assessment.blocked(
                f"{remote} has {tag} at {short(remote_at)}, the local tag is at {short(local)}",
                [Finding.error("git.remote_tag_elsewhere", f"{tag}: {remote_at} != {local}")],
            )
        return Assessment.pending(f"tag {tag} will be pushed to {remote}")

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        repo = ctx.git
        remote = self._remote(repo)
        assert remote is not None
        tag = dated_name(ctx, "tag")
        repo.push_tag(remote, tag, p.timeout_s)
        return Outcome(True, f"pushed {tag} to {remote}")
