"""`afasa-ops rollback`: bring the repo back to the pre-audit tag's state, safely.

The tag's tree is restored as a NEW commit on the current branch (`git restore
--source=<tag>`, then commit) rather than by resetting or checking out another branch:
- nothing is lost: the audit's commits stay in the branch history, and the rollback itself
  can be undone with `git revert`;
- no ref is moved backwards and HEAD is never detached, so a pushed fix branch stays
  fast-forwardable;
- uncommitted work cannot be overwritten, because a dirty tree is refused up front.
Then the Compose services whose merged definition changed are recreated (only those).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

from afasa_ops.errors import AfasaOpsError, BlockedError
from afasa_ops.files import atomic_write
from afasa_ops.infra.git import GitRepo
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.journal import JournalReader
from afasa_ops.runbook.params import runbook_parameter

PRE_AUDIT_EVENT = "pre_audit_tag"


@dataclass
class RollbackResult:
    tag: str
    tag_commit: str
    previous_head: str
    branch: str | None
    found_by: str  # "--tag", "journal" or "tag pattern"
    commit: str | None = None  # the rollback commit; None when already at the tag's state
    files: list[str] = field(default_factory=list)
    services_changed: list[str] = field(default_factory=list)
    services_removed: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    # afasa-ops' own adopted services (docker-compose.afasa-ops.yml), stopped and removed.
    removed: list[str] = field(default_factory=list)
    env_restored: bool = False  # COMPOSE_FILE in .env no longer names the override
    not_running: list[str] = field(default_factory=list)  # changed, but no container to recreate
    recreate_skipped: str | None = None
    recreate_failed: bool = False
    commands: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def find_pre_audit_tag(ctx: Context, repo: GitRepo, explicit: str | None) -> tuple[str, str, str]:
    """(tag, commit, how it was found): --tag, else the journal, else the tag pattern."""
    if explicit:
        commit = repo.tag_commit(explicit)
        if commit is None:
            raise BlockedError(f"tag {explicit} does not exist in {ctx.repo}")
        return explicit, commit, "--tag"
    reader = JournalReader(ctx.repo)
    for run_id in reversed(reader.run_ids()):
        for event in reader.events(run_id):
            if event.get("event") == PRE_AUDIT_EVENT:
                tag = str(event.get("tag"))
                commit = repo.tag_commit(tag)
                if commit:
                    return tag, commit, "journal"
    template = runbook_parameter(ctx, "tag")
    pattern = template.replace("{date}", "*")
    found = repo.tags_matching(pattern)
    if not found:
        raise BlockedError(
            f"no pre-audit tag in {ctx.repo} (journal has none, no tag matches {pattern})",
            hint="pass --tag NAME",
        )
    return found[0][0], found[0][1], "tag pattern"


def _service_models(ctx: Context) -> dict[str, Any] | None:
    from afasa_ops.compose.project import load_project

    compose = ctx.settings.compose
    try:
        project = load_project(ctx.repo, ctx.compose_files(), project_name=compose.project_name)
    except AfasaOpsError:
        return None
    return dict(project.services)


def rollback(ctx: Context, tag: str | None = None) -> RollbackResult:
    repo = ctx.git
    dirty = repo.dirty_files()
    if dirty:
        raise BlockedError(
            f"uncommitted changes in {ctx.repo}: {', '.join(dirty[:20])}",
            hint="commit or stash them first; rollback never overwrites uncommitted work",
        )
    name, tag_commit, found_by = find_pre_audit_tag(ctx, repo, tag)
    head = repo.head_commit()
    result = RollbackResult(name, tag_commit, head, repo.current_branch(), found_by)
    files = repo.changed_between(tag_commit, head)
    if not files:
        result.message = f"already at the state of {name} ({tag_commit[:12]}); nothing to do"
        return result
    before = _service_models(ctx)
    repo.restore_tree(tag_commit)
    _drop_override_from_env(ctx, result)
    result.commit = repo.commit(
        f"revert: roll back to {name} ({tag_commit[:12]})\n\nafasa-ops rollback restored the "
        f"tree of {name}; the audit's commits stay in history (undo with git revert)."
    )
    result.files = files
    after = _service_models(ctx)
    _diff_services(result, before, after)
    _recreate(ctx, result)
    result.message = (
        f"restored {len(files)} file(s) from {name} as commit {result.commit[:12]} on "
        f"{result.branch or 'a detached HEAD'}"
    )
    return result


def _diff_services(
    result: RollbackResult, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    if after is None:
        result.recreate_skipped = "the compose project does not load at the tag's state"
        return
    before = before or {}
    result.services_changed = sorted(s for s in after if before.get(s) != after[s])
    result.services_removed = sorted(s for s in before if s not in after)


def _drop_override_from_env(ctx: Context, result: RollbackResult) -> None:
    """The override is a commit, so the checkout drops it; .env is ignored by git, so its
    COMPOSE_FILE is taken back here, or a plain `docker compose` would name a missing file."""
    from afasa_ops.compose.override import BUILD_DIR, OVERRIDE_FILE, without_override

    env = ctx.repo / ".env"
    if (ctx.repo / OVERRIDE_FILE).exists():
        return
    # The image's wheels were ignored by the build context's own .gitignore, now gone.
    if not (ctx.repo / BUILD_DIR / "Dockerfile").exists():
        shutil.rmtree(ctx.repo / BUILD_DIR, ignore_errors=True)
    if not env.exists():
        return
    text = env.read_text()
    restored = without_override(text, os.pathsep)
    if restored != text:
        atomic_write(env, restored)
        result.env_restored = True


def _remove_adopted(ctx: Context, result: RollbackResult) -> None:
    """afasa-ops' own adopted containers go with their override, so AFASA's routers answer
    again; other removed services are left to the operator (`up -d --remove-orphans`)."""
    from afasa_ops.compose.override import is_adopted_service

    adopted = [s for s in result.services_removed if is_adopted_service(s)]
    if not adopted:
        return
    project = ctx.project()
    try:
        found = {s: ctx.docker.service_container(project.name, s) for s in adopted}
    except AfasaOpsError as exc:
        result.recreate_skipped = f"no engine: {exc}; remove the afasa-ops-* containers by hand"
        return
    ids = [c.id for c in found.values() if c is not None]
    if ids:
        record = ctx.docker_cli.run("rm", "-f", *ids, timeout_s=120)
        result.commands.append(asdict(record))
        if record.exit_code != 0:
            result.recreate_failed = True
            return
    result.removed = sorted(s for s, c in found.items() if c is not None)


def _recreate(ctx: Context, result: RollbackResult) -> None:
    _remove_adopted(ctx, result)
    if not result.services_changed or result.recreate_skipped:
        return
    project = ctx.project()
    engine = ctx.docker
    try:
        # Only services that run now are recreated: rollback never starts new ones.
        running = [s for s in result.services_changed if engine.service_container(project.name, s)]
    except AfasaOpsError as exc:
        result.recreate_skipped = f"no engine: {exc}; recreate by hand: " + " ".join(
            ["docker compose up -d --force-recreate", *result.services_changed]
        )
        return
    result.not_running = [s for s in result.services_changed if s not in running]
    if not running:
        return
    record = ctx.compose.run("up", "-d", "--force-recreate", "--no-deps", *running, timeout_s=600)
    result.commands.append(asdict(record))
    if record.exit_code == 0:
        result.recreated = running
    else:
        result.recreate_failed = True
        result.recreate_skipped = (
            f"compose up exited {record.exit_code}: "
            + (record.stderr.strip().splitlines() or ["(no output)"])[-1]
        )
