"""The `patch.apply` step kind inside the runner (phase2 of the shipped runbook, afasa-repair)."""

from __future__ import annotations

from pathlib import Path

from afasa_ops.config import load_settings
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.model import Status
from afasa_ops.runbook.runner import Runner, Selection
from tests.conftest import git
from tests.support.patch_bundles import (
    EXPECTED_GROUPS,
    RUNBOOK,
    log_groups,
    patched_tree,
    snapshot,
    write_config,
    zip_tree,
)

STEP = "phase2.patch.apply"


def context(config: Path, **params: str) -> Context:
    ctx = Context(load_settings(config), Options(yes=True))
    ctx.params.update(params)
    return ctx


def prepare(afasa_repo: Path) -> None:
    git(afasa_repo, "tag", "pre-audit-2026-11-27")
    git(afasa_repo, "checkout", "-q", "-b", "fix/robust-audit-2026-11-27")


def test_runbook_has_the_step_first_in_phase2() -> None:
    phase2 = load_runbook(RUNBOOK).phase("phase2")
    assert phase2.steps[0].id == STEP
    assert phase2.steps[0].kind == "patch.apply"


def test_skipped_with_a_reason_when_no_bundle(tmp_path: Path, afasa_repo: Path) -> None:
    config = write_config(tmp_path, afasa_repo)
    result = Runner(load_runbook(RUNBOOK), context(config)).plan(Selection(only_step=STEP))
    (step,) = result.steps
    assert step.status == Status.SKIPPED
    assert "no patch bundle configured" in step.summary


def test_plan_then_run_then_converged(tmp_path: Path, afasa_repo: Path) -> None:
    prepare(afasa_repo)
    zip_tree(patched_tree(tmp_path / "src"), tmp_path / "Afasa-main-patched.zip")
    # [patch] bundle is relative to the config file's folder.
    config = write_config(tmp_path, afasa_repo, '[patch]\nbundle = "Afasa-main-patched.zip"\n')
    runbook = load_runbook(RUNBOOK)

    planned = Runner(runbook, context(config)).plan(Selection(only_step=STEP)).steps[0]
    assert planned.status == Status.PENDING
    assert "+    image: traefik:v3.6.7" in (planned.diff or "")
    groups = {f.data["group"]: sorted(f.data["paths"]) for f in planned.findings}
    assert groups == EXPECTED_GROUPS

    ran = Runner(runbook, context(config)).run(Selection(only_step=STEP))
    assert ran.status == "ok", ran.message
    assert ran.steps[0].status == Status.CHANGED
    assert [c["message"] for c in ran.steps[0].artifacts["commits"]] == list(EXPECTED_GROUPS)
    assert log_groups(afasa_repo, 5) == list(EXPECTED_GROUPS.items())

    again = Runner(runbook, context(config)).run(Selection(only_step=STEP))
    assert again.steps[0].status == Status.OK
    assert git(afasa_repo, "rev-list", "--count", "HEAD") == "6"


def test_bundle_from_runbook_parameter(tmp_path: Path, afasa_repo: Path) -> None:
    prepare(afasa_repo)
    tree = patched_tree(tmp_path / "src")
    config = write_config(tmp_path, afasa_repo)
    ran = Runner(load_runbook(RUNBOOK), context(config, patch_bundle=str(tree))).run(
        Selection(only_step=STEP)
    )
    assert ran.steps[0].status == Status.CHANGED
    assert log_groups(afasa_repo, 5) == list(EXPECTED_GROUPS.items())


def test_conflict_blocks_the_step_and_writes_nothing(tmp_path: Path, afasa_repo: Path) -> None:
    prepare(afasa_repo)
    compose = afasa_repo / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("traefik:latest", "traefik:v3.6.2"))
    git(afasa_repo, "commit", "-qam", "chore(compose): pin traefik")
    bundle = zip_tree(patched_tree(tmp_path / "src"), tmp_path / "b.zip")
    config = write_config(tmp_path, afasa_repo)
    before = snapshot(afasa_repo)
    ran = Runner(load_runbook(RUNBOOK), context(config, patch_bundle=str(bundle))).run(
        Selection(only_step=STEP)
    )
    assert ran.status == "blocked"
    assert ran.steps[0].status == Status.BLOCKED
    assert "docker-compose.yml" in ran.steps[0].summary
    assert [f.code for f in ran.steps[0].findings] == ["patch.conflict"]
    assert snapshot(afasa_repo) == before


def test_hostile_bundle_blocks_the_step(tmp_path: Path, afasa_repo: Path) -> None:
    prepare(afasa_repo)
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(b"PK\x03\x04 truncated")
    config = write_config(tmp_path, afasa_repo)
    before = snapshot(afasa_repo)
    ran = Runner(load_runbook(RUNBOOK), context(config, patch_bundle=str(bundle))).run(
        Selection(only_step=STEP)
    )
    assert ran.steps[0].status == Status.BLOCKED
    assert "not a readable zip" in ran.steps[0].summary
    assert snapshot(afasa_repo) == before
