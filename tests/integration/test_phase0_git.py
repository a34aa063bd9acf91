"""Phase 0 on real git repositories: clean tree, tag, fix branch, push to a bare remote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from afasa_ops.commands.plan import plan
from afasa_ops.commands.run import run
from afasa_ops.config import load_settings
from afasa_ops.runbook.commits import commit_change
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.runner import Selection
from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]
DATE = "2026-11-28"


def context(repo: Path, tmp_path: Path, **opts: bool) -> Context:
    cfg = tmp_path / "afasa-ops.toml"
    cfg.write_text(
        f'[repo]\npath = "{repo}"\n[runbook]\npath = "{ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"}"\n'
    )
    return Context(settings=load_settings(cfg), options=Options(**opts), params={"date": DATE})


def run_phase0(repo: Path, tmp_path: Path, **opts: bool):  # type: ignore[no-untyped-def]
    ctx = context(repo, tmp_path, **opts)
    book = load_runbook(ctx.settings.runbook_path())
    return run(book, ctx, Selection(["phase0"]))


def statuses(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.id: s.status.value for s in result.steps}


def test_phase0_tags_branches_and_skips_push_without_remote(
    afasa_repo: Path, tmp_path: Path
) -> None:
    start = git(afasa_repo, "rev-parse", "HEAD")
    result = run_phase0(afasa_repo, tmp_path)
    assert result.status == "ok", result.message
    assert statuses(result) == {
        "phase0.git.clean": "ok",
        "phase0.git.tag": "changed",
        "phase0.git.branch": "changed",
        "phase0.git.push": "skipped",
    }
    assert "no remote is configured" in result.steps[-1].summary
    assert git(afasa_repo, "rev-parse", f"pre-audit-{DATE}^{{commit}}") == start
    assert git(afasa_repo, "branch", "--show-current") == f"fix/robust-audit-{DATE}"
    # The journal records the rollback point for `afasa-ops rollback`.
    journal = next((afasa_repo / ".afasa-ops" / "runs").glob("*/journal.jsonl")).read_text()
    events = [json.loads(line) for line in journal.splitlines()]
    assert any(e["event"] == "pre_audit_tag" and e["commit"] == start for e in events)

    again = run_phase0(afasa_repo, tmp_path)
    assert statuses(again) == {
        "phase0.git.clean": "ok",
        "phase0.git.tag": "ok",
        "phase0.git.branch": "ok",
        "phase0.git.push": "skipped",
    }


def test_dirty_tree_blocks_and_lists_files(afasa_repo: Path, tmp_path: Path) -> None:
    (afasa_repo / "docker-compose.yml").write_text("services: {}\n")
    (afasa_repo / "notes.txt").write_text("wip\n")
    result = run_phase0(afasa_repo, tmp_path)
    assert result.status == "blocked"
    assert "docker-compose.yml" in result.steps[0].summary
    assert "notes.txt" in result.steps[0].summary
    assert git(afasa_repo, "tag", "--list") == ""

    allowed = run_phase0(afasa_repo, tmp_path, allow_dirty=True)
    assert allowed.status == "ok"
    assert "--allow-dirty" in allowed.steps[0].summary
    assert allowed.steps[0].findings[0].code == "git.dirty_allowed"


def test_tag_at_another_commit_blocks_with_both_commits(afasa_repo: Path, tmp_path: Path) -> None:
    first = git(afasa_repo, "rev-parse", "HEAD")
    git(afasa_repo, "tag", f"pre-audit-{DATE}")
    git(afasa_repo, "commit", "-q", "--allow-empty", "-m", "later work")
    head = git(afasa_repo, "rev-parse", "HEAD")
    result = run_phase0(afasa_repo, tmp_path)
    assert result.status == "blocked"
    tag_step = result.steps[1]
    assert tag_step.id == "phase0.git.tag" and tag_step.status.value == "blocked"
    assert first[:12] in tag_step.summary and head[:12] in tag_step.summary


def test_push_to_a_bare_remote_needs_yes_then_converges(afasa_repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(afasa_repo, "remote", "add", "origin", str(bare))
    refused = run_phase0(afasa_repo, tmp_path)
    # The push needs confirmation: without --yes the run blocks before its first change.
    assert refused.status == "blocked"
    assert "--yes" in refused.message and "phase0.git.push" in refused.message
    assert git(afasa_repo, "tag", "--list", "pre-audit-*") == ""

    pushed = run_phase0(afasa_repo, tmp_path, yes=True)
    assert pushed.status == "ok", pushed.message
    assert statuses(pushed)["phase0.git.push"] == "changed"
    remote_tag = git(bare, "rev-parse", f"refs/tags/pre-audit-{DATE}^{{commit}}")
    assert remote_tag == git(afasa_repo, "rev-parse", f"pre-audit-{DATE}^{{commit}}")
    again = run_phase0(afasa_repo, tmp_path, yes=True)
    assert statuses(again)["phase0.git.push"] == "ok"


def test_failed_push_is_failed(afasa_repo: Path, tmp_path: Path) -> None:
    git(afasa_repo, "remote", "add", "origin", str(tmp_path / "missing.git"))
    result = run_phase0(afasa_repo, tmp_path, yes=True)
    assert result.status == "failed"
    assert result.steps[-1].status.value == "failed"
    assert "missing.git" in (result.steps[-1].error or result.steps[-1].summary)


def test_plan_changes_nothing(afasa_repo: Path, tmp_path: Path) -> None:
    ctx = context(afasa_repo, tmp_path)
    result = plan(load_runbook(ctx.settings.runbook_path()), ctx, Selection(["phase0"]))
    assert result.status == "pending"
    assert git(afasa_repo, "tag", "--list") == ""
    assert git(afasa_repo, "branch", "--show-current") == "main"


@pytest.mark.parametrize("no_commit", [False, True])
def test_later_changes_commit_on_the_fix_branch(
    afasa_repo: Path, tmp_path: Path, no_commit: bool
) -> None:
    assert run_phase0(afasa_repo, tmp_path).status == "ok"
    ctx = context(afasa_repo, tmp_path, no_commit=no_commit)
    said: list[str] = []
    ctx.say = said.append
    (afasa_repo / "docker-compose.yml").write_text("services: {}\n")
    record = commit_change(
        ctx, ["docker-compose.yml"], "chore(compose): pin traefik + fix network discovery"
    )
    assert "+services: {}" in record.diff and record.diff in said[0]
    if no_commit:
        assert record.commit is None
        assert git(afasa_repo, "diff", "--cached", "--name-only") == "docker-compose.yml"
    else:
        assert (
            git(afasa_repo, "log", "-1", "--format=%s")
            == "chore(compose): pin traefik + fix network discovery"
        )
        assert git(afasa_repo, "branch", "--show-current") == f"fix/robust-audit-{DATE}"


def test_timezone_decides_the_date(afasa_repo: Path, tmp_path: Path) -> None:
    from afasa_ops.steps.git import operator_date

    ctx = context(afasa_repo, tmp_path)
    ctx.params = {}
    ctx.settings.runbook.timezone = "Pacific/Kiritimati"
    east = operator_date(ctx)
    ctx.settings.runbook.timezone = "Pacific/Pago_Pago"
    west = operator_date(ctx)
    # UTC+14 and UTC-11 are always on different calendar days.
    assert east != west


def test_rollback_restores_the_tag_state_as_a_new_commit(afasa_repo: Path, tmp_path: Path) -> None:
    from afasa_ops.commands.rollback import rollback
    from afasa_ops.errors import BlockedError

    start = git(afasa_repo, "rev-parse", "HEAD")
    assert run_phase0(afasa_repo, tmp_path).status == "ok"
    ctx = context(afasa_repo, tmp_path)
    compose = afasa_repo / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("traefik:latest", "traefik:v3.6.7"))
    (afasa_repo / "added.txt").write_text("new\n")
    commit_change(ctx, ["docker-compose.yml", "added.txt"], "chore(compose): pin traefik")
    fixed = git(afasa_repo, "rev-parse", "HEAD")

    (afasa_repo / "wip.txt").write_text("uncommitted\n")
    with pytest.raises(BlockedError, match=r"wip\.txt"):
        rollback(context(afasa_repo, tmp_path))
    (afasa_repo / "wip.txt").unlink()

    # No engine here: the containers to recreate are reported, not silently skipped.
    ctx = context(afasa_repo, tmp_path)
    ctx.settings.docker.host = f"unix://{tmp_path}/no-engine.sock"
    result = rollback(ctx)
    assert result.found_by == "journal" and result.tag == f"pre-audit-{DATE}"
    assert result.tag_commit == start and result.previous_head == fixed
    assert sorted(result.files) == ["added.txt", "docker-compose.yml"]
    assert result.services_changed == ["traefik"]
    assert result.recreated == []
    assert result.recreate_skipped and "no-engine.sock" in result.recreate_skipped
    # The tree equals the tag's; history keeps the fix; the branch did not move back.
    assert git(afasa_repo, "diff", "--name-only", start, "HEAD") == ""
    assert git(afasa_repo, "merge-base", "--is-ancestor", fixed, "HEAD") == ""
    assert git(afasa_repo, "branch", "--show-current") == f"fix/robust-audit-{DATE}"
    assert not (afasa_repo / "added.txt").exists()

    again = rollback(context(afasa_repo, tmp_path))
    assert again.commit is None and "nothing to do" in again.message


def test_rollback_cli_json_finds_the_tag_by_pattern(afasa_repo: Path, tmp_path: Path) -> None:
    git(afasa_repo, "tag", "pre-audit-2026-01-02")
    git(afasa_repo, "commit", "-q", "--allow-empty", "-m", "x")
    (afasa_repo / "f.txt").write_text("x\n")
    git(afasa_repo, "add", "f.txt")
    git(afasa_repo, "commit", "-q", "-m", "add f")
    ctx = context(afasa_repo, tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "afasa_ops",
            "-c",
            str(tmp_path / "afasa-ops.toml"),
            "rollback",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 4 and "--yes" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "afasa_ops",
            "-c",
            str(tmp_path / "afasa-ops.toml"),
            "rollback",
            "--yes",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tag"] == "pre-audit-2026-01-02" and data["found_by"] == "tag pattern"
    assert data["files"] == ["f.txt"] and data["services_changed"] == []
    assert ctx.repo == afasa_repo.resolve()


def test_a_run_writes_its_reports_and_report_latest_reads_them(
    afasa_repo: Path, tmp_path: Path
) -> None:
    context(afasa_repo, tmp_path)  # writes the config
    cli = [sys.executable, "-m", "afasa_ops", "-c", str(tmp_path / "afasa-ops.toml")]
    proc = subprocess.run(
        [*cli, "run", "phase0", "--yes", "--param", f"date={DATE}"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (afasa_repo / ".afasa-ops" / "runs").iterdir()
    assert f"report: {run_dir / 'report.md'}" in proc.stderr
    for name in ("report.md", "report.json", "junit.xml"):
        assert (run_dir / name).is_file(), name
    markdown = (run_dir / "report.md").read_text()
    skipped = markdown.split("## Skipped")[1].split("## Failed")[0]
    assert "phase0.git.push: no remote is configured" in skipped
    latest = subprocess.run([*cli, "report", "latest"], capture_output=True, text=True)
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout.startswith(f"# afasa-ops report: run {run_dir.name}")
    # `status` names the run whole, however narrow the terminal.
    status = subprocess.run(
        [*cli, "status"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "40"}
    )
    assert run_dir.name in status.stdout.replace("\n", "").replace("│", "").replace(" ", "")
