"""Step kind `patch.apply`: the operators' patch bundle, as reviewed, grouped commits.

apply_plan() is also what `afasa-ops patch apply` runs (commands/patch.py)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from afasa_ops.errors import BlockedError
from afasa_ops.files import atomic_write_bytes
from afasa_ops.findings import Finding
from afasa_ops.patch.apply import (
    ApplyResult,
    GroupResult,
    PatchUndone,
    check_work_tree,
    preflight,
    verify_applied,
)
from afasa_ops.patch.bundle import BundleRefused
from afasa_ops.patch.groups import GroupSpec
from afasa_ops.patch.paths import destination_problem
from afasa_ops.patch.plan import ONLY_IN_REPO, FileChange, PatchPlan
from afasa_ops.patch.undo import undo_apply
from afasa_ops.runbook.commits import commit_change
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.params import runbook_parameter
from afasa_ops.runbook.step import Params, Step, register


class PatchApplyParams(Params):
    bundle: str | None = Field(
        default=None,
        description="Zip or folder; else the runbook parameter patch_bundle or [patch] bundle.",
    )
    groups: list[GroupSpec] = Field(
        min_length=1,
        description="Commit groups: [{globs: [...], message: ...}], the first match wins.",
    )
    catch_all: str = Field(
        min_length=1,
        description="Commit message for changed paths no group matches.",
    )
    since: str | None = Field(
        default=None, description="Tag or commit for conflicts; newest pre-audit-* when unset."
    )
    delete: bool = Field(default=False, description="Delete repo files the bundle lacks.")
    force: bool = Field(default=False, description="Overwrite conflicting files.")


@register
class PatchApply(Step[PatchApplyParams]):
    """Applies the bundle's changes group by group; skipped when no bundle is configured."""

    kind = "patch.apply"
    Params = PatchApplyParams

    def _bundle(self, ctx: Context) -> tuple[Path | None, str]:
        from afasa_ops.patch.sources import configured_bundle

        p = self.params
        return configured_bundle(ctx.settings, ctx.params, p.bundle)

    def _plan(self, ctx: Context, bundle: Path) -> PatchPlan:
        from afasa_ops.patch.apply import build_plan
        from afasa_ops.patch.groups import Grouper
        from afasa_ops.patch.sources import limits_of

        p = self.params
        return build_plan(
            ctx.repo,
            bundle,
            Grouper(p.groups, p.catch_all),
            since=p.since,
            tag_pattern=runbook_parameter(ctx, "tag"),
            limits=limits_of(ctx.settings),
        )

    def check(self, ctx: Context) -> Assessment:
        from afasa_ops.patch.apply import check_work_tree, pending_writes

        p = self.params
        bundle, origin = self._bundle(ctx)
        if bundle is None:
            return Assessment.skipped(
                "no patch bundle configured (set [patch] bundle, or run with "
                "--param patch_bundle=PATH)"
            )
        plan = self._plan(ctx, bundle)
        findings = [
            Finding.warning("patch.conflict", f"{c.path}: {c.conflict}", path=c.path)
            for c in plan.conflicts
            if c.status != "only-in-repo" or p.delete
        ]
        todo = pending_writes(plan, delete=p.delete, force=p.force)
        if findings and not p.force:
            return Assessment.blocked(
                f"{len(findings)} conflict(s) with {plan.tag}: "
                + ", ".join(f.data["path"] for f in findings)
                + " (resolve them, or set force: true)",
                findings,
            )
        if not todo:
            counts = plan.counts()
            return Assessment.ok(
                f"the bundle from {origin} is applied ({counts['unchanged']} files match)",
                findings,
            )
        check_work_tree(
            ctx.git,
            plan,
            allow_dirty=ctx.options.allow_dirty,
            no_commit=ctx.options.no_commit,
        )
        wanted = {c.path for c in todo}
        for message, members in plan.groups():
            paths = [c.path for c in members if c.path in wanted]
            if paths:
                findings.append(
                    Finding.info(
                        "patch.group",
                        f"{message}: {', '.join(paths)}",
                        group=message,
                        paths=paths,
                    )
                )
        return Assessment.pending(
            f"{len(todo)} file(s) to apply from {bundle.name} in "
            f"{sum(1 for f in findings if f.code == 'patch.group')} commit(s)",
            findings,
            "".join(c.diff for c in todo),
        )

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        bundle, _ = self._bundle(ctx)
        if bundle is None:
            return Outcome(False, "no patch bundle configured")
        result = apply_plan(ctx, self._plan(ctx, bundle), delete=p.delete, force=p.force)
        commits = [g.to_json() for g in result.groups]
        done = [g for g in result.groups if g.status != "declined"]
        findings = [
            Finding.warning("patch.declined", f"declined by the operator: {g.message}")
            for g in result.declined
        ]
        return Outcome(
            bool(done),
            f"applied {sum(len(g.paths) for g in done)} file(s) in {len(done)} group(s) "
            f"on {result.branch}",
            findings,
            artifacts={"commits": commits, "verified": result.verified},
        )

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        from afasa_ops.patch.apply import pending_writes

        p = self.params
        bundle, _ = self._bundle(ctx)
        if bundle is None:
            return Assessment.skipped("no patch bundle configured")
        plan = self._plan(ctx, bundle)
        left = pending_writes(plan, delete=p.delete, force=p.force)
        if left:
            return Assessment.pending(
                "paths still differ from the bundle: " + ", ".join(c.path for c in left)
            )
        return Assessment.ok("every applied path matches the bundle byte for byte")


def apply_plan(
    ctx: Context, plan: PatchPlan, *, delete: bool = False, force: bool = False
) -> ApplyResult:
    git = ctx.git
    check_work_tree(git, plan, allow_dirty=ctx.options.allow_dirty, no_commit=ctx.options.no_commit)
    ask = not ctx.options.yes
    if ask and not ctx.options.interactive and any(plan.groups()):
        raise BlockedError(
            "patch apply asks before each group's commit and there is no terminal to ask on",
            hint="review `afasa-ops patch plan` and pass --yes",
        )
    result = ApplyResult(plan, git.current_branch() or "")
    todo: list[tuple[str, list[FileChange]]] = []
    for message, members in plan.groups():
        chosen: list[FileChange] = []
        for change in members:
            if change.status == ONLY_IN_REPO and not delete:
                result.kept_only_in_repo.append(change.path)
            elif change.conflict and not force:
                result.conflicts_skipped.append(change)
            else:
                chosen.append(change)
        if chosen:
            todo.append((message, chosen))
    # Everything that can be checked is checked before the first write.
    preflight(git, plan, [c for _, chosen in todo for c in chosen], no_commit=ctx.options.no_commit)
    start = git.head_commit()
    touched: list[str] = []
    try:
        for message, chosen in todo:
            result.groups.append(_apply_group(ctx, plan, message, chosen, ask, touched))
        result.verified = verify_applied(plan, result)
    except Exception as exc:
        undone = undo_apply(git, start, touched)
        if ctx.journal is not None:
            ctx.journal.write(
                "patch_undone",
                start=start,
                commits=undone.commits,
                paths=undone.paths,
                error=undone.error,
            )
        raise PatchUndone(exc, undone.summary(result.branch)) from exc
    return result


def _apply_group(
    ctx: Context,
    plan: PatchPlan,
    message: str,
    chosen: list[FileChange],
    ask: bool,
    touched: list[str],
) -> GroupResult:
    paths = [c.path for c in chosen]
    ctx.say(
        f"group `{message}`: {len(chosen)} file(s)\n" + "".join(c.diff for c in chosen).rstrip()
    )
    if ask and not ctx.confirm(f"apply and commit `{message}` ({len(chosen)} file(s))?"):
        return GroupResult(message, paths, None, "declined")
    root = plan.repo.resolve()
    for change in chosen:
        # Checked again right before the write: a folder swapped for a symlink since the
        # plan was made must not carry the write outside the repo.
        deleting = change.status == ONLY_IN_REPO
        problem = destination_problem(root, change.path, tracked_only=deleting)
        if problem is not None:
            raise BundleRefused(plan.bundle.source, f"{change.path!r} {problem}")
        target = root / change.path
        touched.append(change.path)
        if ctx.journal is not None and target.exists():
            ctx.journal.keep_original(target)
        if deleting:
            target.unlink()
        else:
            entry = plan.bundle.files[change.path]
            atomic_write_bytes(target, entry.data, 0o755 if entry.executable else 0o644)
    record = commit_change(ctx, paths, message, show=False)
    return GroupResult(message, paths, record.commit, "committed" if record.commit else "staged")
