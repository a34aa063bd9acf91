"""Applying a patch plan: per commit group, show the diff, ask (unless --yes), write, commit on
the current (fix) branch, then verify every applied path byte for byte."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afasa_ops.errors import AfasaOpsError, BlockedError, DriverError, ExitCode, UsageError
from afasa_ops.infra.git import GitRepo
from afasa_ops.patch.bundle import BundleRefused, Limits, read_bundle
from afasa_ops.patch.groups import Grouper
from afasa_ops.patch.paths import check_destinations
from afasa_ops.patch.plan import ADDED, MODIFIED, ONLY_IN_REPO, FileChange, PatchPlan, make_plan


@dataclass
class GroupResult:
    message: str
    paths: list[str]
    commit: str | None = None  # None: staged only (--no-commit) or declined
    status: str = "committed"  # committed | staged | declined

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "paths": self.paths,
            "commit": self.commit,
            "status": self.status,
        }


@dataclass
class ApplyResult:
    plan: PatchPlan
    branch: str
    groups: list[GroupResult] = field(default_factory=list)
    conflicts_skipped: list[FileChange] = field(default_factory=list)
    kept_only_in_repo: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(g.status != "declined" for g in self.groups)

    @property
    def declined(self) -> list[GroupResult]:
        return [g for g in self.groups if g.status == "declined"]

    def to_json(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "changed": self.changed,
            "groups": [g.to_json() for g in self.groups],
            "conflicts_skipped": [
                {"path": c.path, "reason": c.conflict} for c in self.conflicts_skipped
            ],
            "kept_only_in_repo": self.kept_only_in_repo,
            "verified": self.verified,
            "plan": self.plan.to_json(),
        }


def tag_glob(pattern: str) -> str:
    """`pre-audit-{date}` (the runbook's tag parameter) -> `pre-audit-*`."""
    return re.sub(r"\{[^}]*\}", "*", pattern)


def resolve_tag(repo: GitRepo, explicit: str | None, pattern: str) -> str | None:
    """The tag given, or the newest one matching the runbook's tag pattern (pre-audit-*)."""
    if explicit:
        if repo.tag_commit(explicit) is None and not repo.is_revision(explicit):
            raise UsageError(
                f"--since {explicit}: no such tag or commit in {repo.path}",
                hint="see `git tag -l 'pre-audit-*'`",
            )
        return explicit
    return repo.newest_tag(tag_glob(pattern))


def build_plan(
    repo: Path,
    bundle_path: Path,
    grouper: Grouper,
    *,
    since: str | None = None,
    tag_pattern: str,
    limits: Limits | None = None,
) -> PatchPlan:
    """Read and validate the bundle (all of it, first), then compare it with the repo."""
    bundle = read_bundle(bundle_path, limits)
    git = GitRepo(repo)
    return make_plan(repo, bundle, grouper, resolve_tag(git, since, tag_pattern))


def check_work_tree(git: GitRepo, plan: PatchPlan, *, allow_dirty: bool, no_commit: bool) -> None:
    """Refuse a dirty tree as Phase 0 does; --allow-dirty still never mixes in the bundle's paths.

    Under --no-commit, earlier steps leave their changes staged on purpose: those are allowed.
    """
    if git.current_branch() is None:
        raise BlockedError(
            f"{plan.repo}: HEAD is detached; commits would be lost",
            hint="check out the fix branch first (afasa-ops run phase0)",
        )
    staged = git.staged_files()
    dirty = git.dirty_files()
    if no_commit:
        dirty = [p for p in dirty if p not in staged]
        staged = []
    if dirty and not allow_dirty:
        raise BlockedError(
            f"{plan.repo}: the work tree has uncommitted changes: {', '.join(dirty[:20])}"
            + (f" and {len(dirty) - 20} more" if len(dirty) > 20 else ""),
            hint="commit or stash them first, or pass --allow-dirty",
        )
    overlap = sorted({c.path for c in plan.changes}.intersection(dirty))
    if overlap:
        raise BlockedError(
            f"{plan.repo}: bundle paths have uncommitted changes: {', '.join(overlap)}",
            hint="commit or stash them first",
        )
    if staged:
        raise BlockedError(
            f"{plan.repo}: staged changes would join the patch commits: {', '.join(staged)}",
            hint="commit or unstage them first",
        )


class PatchUndone(AfasaOpsError):
    """A group failed after earlier ones were written: all of it was taken back. The exit code
    is the cause's (2 for a refused path, 1 for a failed write or commit)."""

    def __init__(self, cause: BaseException, summary: str) -> None:
        if isinstance(cause, AfasaOpsError):
            reason = cause.message
        else:
            reason = f"{type(cause).__name__}: {cause}"
        super().__init__(f"patch apply stopped: {reason}; {summary}")
        code = cause.exit_code if isinstance(cause, AfasaOpsError) else ExitCode.FAILED
        self.exit_code = code


def preflight(git: GitRepo, plan: PatchPlan, changes: list[FileChange], *, no_commit: bool) -> None:
    """What could fail midway, checked while nothing is written yet."""
    root = plan.repo.resolve()

    def refuse(message: str) -> Exception:
        return BundleRefused(plan.bundle.source, message)

    check_destinations(root, [c.path for c in changes if c.status != ONLY_IN_REPO], refuse)
    git_dir = git.git_dir
    if (git_dir / "index.lock").exists():
        raise BlockedError(
            f"{git_dir / 'index.lock'} exists: another git process is using this repository",
            hint="wait for it to finish, or remove the stale lock file",
        )
    if not no_commit and changes:
        git.require_identity()
    files = plan.bundle.files
    needed = sum(len(files[c.path].data) for c in changes if c.path in files)
    free = shutil.disk_usage(root).free
    # Each file is written beside its target before the rename, and git stores a blob too.
    if needed * 2 > free:
        raise BlockedError(
            f"{root}: {free} bytes free, the bundle's changes need about {needed * 2}",
            hint="free some disk space first",
        )


def verify_applied(plan: PatchPlan, result: ApplyResult) -> list[str]:
    """Every applied path now matches the bundle byte for byte (or is gone, if deleted)."""
    verified: list[str] = []
    wrong: list[str] = []
    for group in result.groups:
        if group.status == "declined":
            continue
        for path in group.paths:
            target = plan.repo / path
            entry = plan.bundle.files.get(path)
            if entry is None:
                ok = not target.exists()
            else:
                ok = target.is_file() and target.read_bytes() == entry.data
            (verified if ok else wrong).append(path)
    if wrong:
        raise DriverError(
            f"after apply these paths do not match the bundle: {', '.join(wrong)}",
            hint="see the journal",
        )
    return verified


def pending_writes(plan: PatchPlan, *, delete: bool, force: bool) -> list[FileChange]:
    """What an apply with these options would change."""
    return [
        c
        for c in plan.changes
        if (c.status in (ADDED, MODIFIED) or (delete and c.status == ONLY_IN_REPO))
        and (force or not c.conflict)
    ]
