"""Applying the patch bundle to a real git repo: grouped commits, verification, idempotency,
conflicts against the pre-audit tag, --no-commit, --delete, --force, declined groups."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from afasa_ops.commands.patch import apply_patch, plan_patch
from afasa_ops.config import load_settings
from afasa_ops.errors import BlockedError, ExitCode, UsageError
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import Runbook, load_runbook
from tests.conftest import git
from tests.support.patch_bundles import (
    COMPOSE,
    DB,
    EXPECTED_GROUPS,
    REPORT,
    REST,
    RUNBOOK,
    TB,
    log_groups,
    patched_tree,
    snapshot,
    write_config,
    zip_tree,
)


@pytest.fixture
def runbook() -> Runbook:
    return load_runbook(RUNBOOK)


@pytest.fixture
def repo(afasa_repo: Path) -> Path:
    """The example on its fix branch, tagged pre-audit at the starting commit (Phase 0)."""
    tag(afasa_repo, "pre-audit-2026-11-27", "HEAD", "2026-11-27T09:00:00")
    git(afasa_repo, "checkout", "-q", "-b", "fix/robust-audit-2026-11-27")
    return afasa_repo


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return patched_tree(tmp_path / "bundle")


@pytest.fixture
def bundle(tmp_path: Path, tree: Path) -> Path:
    return zip_tree(tree, tmp_path / "Afasa-main-patched.zip")


def tag(repo: Path, name: str, rev: str, date: str) -> None:
    env = {**os.environ, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "tag", "-a", name, "-m", name, rev], cwd=repo, env=env, check=True)


def context(tmp_path: Path, repo: Path, **options: bool) -> Context:
    opts = Options(**{"yes": True, **options})
    return Context(load_settings(write_config(tmp_path, repo)), opts)


def commit_file(repo: Path, rel: str, text: str, message: str) -> None:
    (repo / rel).write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)


def test_plan_reports_each_file_and_its_group(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    before = snapshot(repo)
    plan = plan_patch(context(tmp_path, repo), runbook, bundle)
    assert snapshot(repo) == before
    status = {c.path: c.status for c in plan.changes}
    assert status["services/tb_adapter/app/sync.py"] == "added"
    assert status["docker-compose.yml"] == "modified"
    assert status["infra/postgres/init/001_init.sql"] == "unchanged"
    assert plan.bundle.stripped_root == "Afasa-main"
    assert plan.tag == "pre-audit-2026-11-27"
    assert {m: sorted(c.path for c in members) for m, members in plan.groups()} == (EXPECTED_GROUPS)
    compose = next(c for c in plan.changes if c.path == "docker-compose.yml")
    assert "-    image: traefik:latest\n+    image: traefik:v3.6.7\n" in compose.diff
    assert not plan.conflicts


def test_apply_commits_each_group_with_its_message(
    tmp_path: Path, repo: Path, bundle: Path, tree: Path, runbook: Runbook
) -> None:
    start = git(repo, "rev-parse", "HEAD")
    result = apply_patch(context(tmp_path, repo), runbook, bundle)
    # One commit per group, in the runbook's order, each holding exactly its files.
    assert log_groups(repo, 5) == [(m, files) for m, files in EXPECTED_GROUPS.items()]
    assert git(repo, "rev-list", "--count", f"{start}..HEAD") == "5"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "fix/robust-audit-2026-11-27"
    assert git(repo, "status", "--porcelain") == ""
    assert [g.message for g in result.groups] == [DB, TB, REPORT, COMPOSE, REST]
    assert all(g.commit for g in result.groups)
    # Byte for byte, every file of the bundle is now in the repo.
    for path in tree.rglob("*"):
        if path.is_file():
            rel = path.relative_to(tree)
            assert (repo / rel).read_bytes() == path.read_bytes(), rel
    assert sorted(result.verified) == sorted(p for ps in EXPECTED_GROUPS.values() for p in ps)


def test_second_apply_finds_nothing_to_do(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    apply_patch(context(tmp_path, repo), runbook, bundle)
    head = git(repo, "rev-parse", "HEAD")
    again = apply_patch(context(tmp_path, repo), runbook, bundle)
    assert again.groups == [] and not again.changed
    assert git(repo, "rev-parse", "HEAD") == head
    plan = plan_patch(context(tmp_path, repo), runbook, bundle)
    assert plan.writes == [] and not plan.conflicts


def test_directory_bundle(tmp_path: Path, repo: Path, tree: Path, runbook: Runbook) -> None:
    result = apply_patch(context(tmp_path, repo), runbook, tree)
    assert [g.message for g in result.groups] == [DB, TB, REPORT, COMPOSE, REST]
    assert log_groups(repo, 5) == [(m, files) for m, files in EXPECTED_GROUPS.items()]
    assert result.plan.bundle.kind == "directory"


def test_no_commit_leaves_every_group_staged(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = apply_patch(context(tmp_path, repo, no_commit=True), runbook, bundle)
    assert git(repo, "rev-parse", "HEAD") == head
    assert {g.status for g in result.groups} == {"staged"}
    staged = sorted(git(repo, "diff", "--cached", "--name-only").splitlines())
    assert staged == sorted(p for ps in EXPECTED_GROUPS.values() for p in ps)


def test_only_in_repo_files_kept_unless_delete(
    tmp_path: Path, repo: Path, tree: Path, runbook: Runbook
) -> None:
    (tree / "infra/traefik/dynamic.yml").unlink()
    bundle = zip_tree(tree, tmp_path / "b.zip")
    kept = apply_patch(context(tmp_path, repo), runbook, bundle)
    assert kept.kept_only_in_repo == ["infra/traefik/dynamic.yml"]
    assert (repo / "infra/traefik/dynamic.yml").exists()
    assert "infra/traefik/dynamic.yml" in git(repo, "ls-files")

    deleted = apply_patch(context(tmp_path, repo), runbook, bundle, delete=True)
    assert not (repo / "infra/traefik/dynamic.yml").exists()
    assert [(g.message, g.paths) for g in deleted.groups] == [(REST, ["infra/traefik/dynamic.yml"])]
    assert log_groups(repo, 1) == [(REST, ["infra/traefik/dynamic.yml"])]
    assert git(repo, "status", "--porcelain") == ""


def test_conflict_with_the_tag_is_listed_and_not_overwritten(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    # Phase 1 already pinned Traefik on the fix branch, differently from the bundle.
    pinned = (repo / "docker-compose.yml").read_text().replace("traefik:latest", "traefik:v3.6.2")
    commit_file(repo, "docker-compose.yml", pinned, "chore(compose): pin traefik")
    result = apply_patch(context(tmp_path, repo), runbook, bundle)
    assert [c.path for c in result.conflicts_skipped] == ["docker-compose.yml"]
    assert "changed in the repo since pre-audit-2026-11-27" in (
        result.conflicts_skipped[0].conflict or ""
    )
    assert (repo / "docker-compose.yml").read_text() == pinned
    assert [g.message for g in result.groups] == [DB, TB, REPORT, REST]

    forced = apply_patch(context(tmp_path, repo), runbook, bundle, force=True)
    assert [(g.message, g.paths) for g in forced.groups] == [(COMPOSE, ["docker-compose.yml"])]
    assert "image: traefik:v3.6.7" in (repo / "docker-compose.yml").read_text()
    assert log_groups(repo, 1) == [(COMPOSE, ["docker-compose.yml"])]


def test_bundle_with_the_original_would_revert_and_is_a_conflict(
    tmp_path: Path, repo: Path, tree: Path, runbook: Runbook
) -> None:
    # The bundle leaves models.py as it was at the tag; the repo changed it since.
    commit_file(repo, "services/common/models.py", "class Device: ...\n", "feat: device model")
    (tree / "services/common/models.py").write_text(
        git(repo, "show", "pre-audit-2026-11-27:services/common/models.py") + "\n"
    )
    plan = plan_patch(context(tmp_path, repo), runbook, zip_tree(tree, tmp_path / "b.zip"))
    conflict = next(c for c in plan.conflicts if c.path == "services/common/models.py")
    assert "would revert" in (conflict.conflict or "")


def test_newest_pre_audit_tag_is_used(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    pinned = (repo / "docker-compose.yml").read_text().replace("traefik:latest", "traefik:v3.6.2")
    commit_file(repo, "docker-compose.yml", pinned, "chore(compose): pin traefik")
    # An older tag on the current commit: if it were chosen, there would be no conflict.
    tag(repo, "pre-audit-2026-11-01", "HEAD", "2026-11-01T09:00:00")
    plan = plan_patch(context(tmp_path, repo), runbook, bundle)
    assert plan.tag == "pre-audit-2026-11-27"
    assert [c.path for c in plan.conflicts] == ["docker-compose.yml"]
    # --since names the base explicitly.
    at_head = plan_patch(context(tmp_path, repo), runbook, bundle, since="pre-audit-2026-11-01")
    assert at_head.tag == "pre-audit-2026-11-01" and not at_head.conflicts
    with pytest.raises(UsageError) as info:
        plan_patch(context(tmp_path, repo), runbook, bundle, since="pre-audit-1999-01-01")
    assert info.value.exit_code == ExitCode.USAGE


def test_delete_of_a_file_added_since_the_tag_is_a_conflict(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    commit_file(repo, "infra/postgres/init/004_extra.sql", "SELECT 1;\n", "feat(db): extra")
    result = apply_patch(context(tmp_path, repo), runbook, bundle, delete=True)
    assert [c.path for c in result.conflicts_skipped] == ["infra/postgres/init/004_extra.sql"]
    assert (repo / "infra/postgres/init/004_extra.sql").exists()


def test_dirty_tree_is_blocked_and_nothing_written(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    (repo / "services/report/app/main.py").write_text("# local edit\n")
    (repo / "scratch.txt").write_text("notes\n")
    before = snapshot(repo)
    with pytest.raises(BlockedError) as info:
        apply_patch(context(tmp_path, repo), runbook, bundle)
    assert info.value.exit_code == ExitCode.BLOCKED
    assert "services/report/app/main.py" in str(info.value)
    assert "scratch.txt" in str(info.value)
    assert snapshot(repo) == before


def test_allow_dirty_still_refuses_local_edits_to_bundle_paths(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    (repo / "scratch.txt").write_text("notes\n")
    result = apply_patch(context(tmp_path, repo, allow_dirty=True), runbook, bundle)
    assert len(result.groups) == 5
    assert "scratch.txt" not in git(repo, "ls-files")  # never swept into a patch commit
    (repo / "docker-compose.yml").write_text("# local edit\n")
    with pytest.raises(BlockedError, match=r"docker-compose\.yml"):
        apply_patch(context(tmp_path, repo, allow_dirty=True), runbook, bundle)


def test_detached_head_is_blocked(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(BlockedError, match="detached"):
        apply_patch(context(tmp_path, repo), runbook, bundle)


def test_declined_group_is_not_written(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    asked: list[str] = []
    shown: list[str] = []

    def confirm(question: str) -> bool:
        asked.append(question)
        return REPORT not in question

    ctx = Context(
        load_settings(write_config(tmp_path, repo)),
        Options(interactive=True),
        confirm=confirm,
        say=shown.append,
    )
    result = apply_patch(ctx, runbook, bundle)
    assert len(asked) == 5
    # Each group's diff was shown before its question.
    assert any(
        s.startswith(f"group `{TB}`") and "+++ b/services/tb_adapter/app/sync.py" in s
        for s in shown
    )
    assert [g.message for g in result.declined] == [REPORT]
    assert not (repo / "services/report/app/worker.py").exists()
    assert [m for m, _ in log_groups(repo, 4)] == [DB, TB, COMPOSE, REST]


def test_non_interactive_without_yes_is_blocked(
    tmp_path: Path, repo: Path, bundle: Path, runbook: Runbook
) -> None:
    before = snapshot(repo)
    ctx = Context(load_settings(write_config(tmp_path, repo)), Options())
    with pytest.raises(BlockedError, match="--yes"):
        apply_patch(ctx, runbook, bundle)
    assert snapshot(repo) == before


def test_custom_groups_from_the_runbook(tmp_path: Path, repo: Path, bundle: Path) -> None:
    custom = tmp_path / "runbook.yaml"
    custom.write_text(
        """name: custom
phases:
  - id: phase2
    steps:
      - id: patch.apply
        kind: patch.apply
        params:
          groups:
            - globs: ["services/**/*.py"]
              message: "feat: python services"
          catch_all: "chore: the rest"
"""
    )
    apply_patch(context(tmp_path, repo), load_runbook(custom), bundle)
    assert log_groups(repo, 2) == [
        (
            "feat: python services",
            sorted(
                [
                    "services/common/models.py",
                    "services/report/app/main.py",
                    "services/report/app/worker.py",
                    "services/tb_adapter/app/main.py",
                    "services/tb_adapter/app/sync.py",
                ]
            ),
        ),
        (
            "chore: the rest",
            ["docker-compose.yml", "docs/PATCH-NOTES.md", "infra/postgres/init/003_devices.sql"],
        ),
    ]


def test_files_the_repo_ignores_are_left_out(
    tmp_path: Path, repo: Path, tree: Path, runbook: Runbook
) -> None:
    commit_file(repo, ".gitignore", ".env\n", "chore: ignore .env")
    (tree / ".gitignore").write_text(".env\n")
    (tree / ".env").write_text("POSTGRES_PASSWORD=not-for-git\n")
    result = apply_patch(context(tmp_path, repo), runbook, zip_tree(tree, tmp_path / "b.zip"))
    assert not (repo / ".env").exists()
    assert any(".env" in note for note in result.plan.notes)
    assert ".env" not in git(repo, "log", "--all", "--name-only", "--format=").splitlines()
