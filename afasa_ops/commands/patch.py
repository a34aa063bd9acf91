"""The public verbs behind `afasa-ops patch plan|apply`: they return result objects."""

from __future__ import annotations

import os
from pathlib import Path

from afasa_ops.errors import RunbookError
from afasa_ops.patch.apply import ApplyResult, build_plan
from afasa_ops.patch.groups import Grouper
from afasa_ops.patch.plan import PatchPlan
from afasa_ops.patch.sources import limits_of
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.journal import Journal, new_run_id
from afasa_ops.runbook.loader import Runbook
from afasa_ops.runbook.lock import RunLock
from afasa_ops.runbook.params import runbook_parameter
from afasa_ops.steps.patch import PatchApplyParams, apply_plan


def grouper_of(runbook: Runbook | None) -> Grouper:
    """The groups of the runbook's patch.apply step: the commit messages are the runbook's."""
    for step in runbook.steps() if runbook is not None else []:
        if isinstance(step.params, PatchApplyParams):
            return Grouper(list(step.params.groups), step.params.catch_all)
    raise RunbookError(
        "the runbook has no patch.apply step, whose groups name the patch's commits",
        hint="add one (see the shipped afasa_ops/data/runbooks/afasa-repair.yaml and docs/patch.md)",
    )


def plan_patch(
    ctx: Context, runbook: Runbook | None, bundle: Path, since: str | None = None
) -> PatchPlan:
    """Read-only: validate the bundle and compare it with the repo."""
    ctx.params = {**(runbook.parameters if runbook else {}), **ctx.params}
    return build_plan(
        ctx.repo,
        bundle,
        grouper_of(runbook),
        since=since,
        tag_pattern=runbook_parameter(ctx, "tag"),
        limits=limits_of(ctx.settings),
    )


def apply_patch(
    ctx: Context,
    runbook: Runbook | None,
    bundle: Path,
    *,
    since: str | None = None,
    delete: bool = False,
    force: bool = False,
) -> ApplyResult:
    """Validate everything, then apply group by group under the target's lock, journaled."""
    plan = plan_patch(ctx, runbook, bundle, since)
    run_id = new_run_id()
    ctx.run_id = run_id
    with RunLock(ctx.repo, run_id):
        journal = Journal(ctx.repo, run_id)
        ctx.journal = journal
        journal.write("run_started", run_id=run_id, mode="patch", phases=[], pid=os.getpid())
        status = "failed"
        try:
            result = apply_plan(ctx, plan, delete=delete, force=force)
            status = "blocked" if result.conflicts_skipped else "ok"
            journal.write("patch_applied", result=result.to_json())
            return result
        finally:
            journal.write("run_finished", status=status, message=f"patch {bundle}")
            ctx.close()
