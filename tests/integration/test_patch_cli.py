"""`afasa-ops patch plan|apply` as an operator runs it: a subprocess, a config file pointing at
a temporary AFASA repo, and the design's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git
from tests.support.patch_bundles import (
    COMPOSE,
    EXPECTED_GROUPS,
    ROOT,
    hostile_zip,
    log_groups,
    patched_tree,
    snapshot,
    write_config,
    zip_tree,
)

BIN = ROOT / ".venv" / "bin" / "afasa-ops"


def afasa_ops(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "afasa_ops"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFASA_OPS_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*argv, "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def repo(afasa_repo: Path) -> Path:
    git(afasa_repo, "tag", "pre-audit-2026-11-27")
    git(afasa_repo, "checkout", "-q", "-b", "fix/robust-audit-2026-11-27")
    return afasa_repo


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return patched_tree(tmp_path / "src")


@pytest.fixture
def bundle(tmp_path: Path, tree: Path) -> Path:
    return zip_tree(tree, tmp_path / "Afasa-main-patched.zip")


@pytest.fixture
def config(tmp_path: Path, repo: Path) -> Path:
    return write_config(tmp_path, repo)


def test_help_lists_plan_and_apply(config: Path) -> None:
    out = afasa_ops(config, "patch", "--help")
    assert out.returncode == 0
    assert "plan" in out.stdout and "apply" in out.stdout
    apply_help = afasa_ops(config, "patch", "apply", "--help").stdout
    for flag in ("--yes", "--delete", "--force", "--json", "--no-commit", "--since"):
        assert flag in apply_help


def test_plan_apply_reapply_exit_codes(config: Path, repo: Path, bundle: Path) -> None:
    planned = afasa_ops(config, "patch", "plan", str(bundle), "--json")
    assert planned.returncode == 3, planned.stderr
    doc = json.loads(planned.stdout)
    assert {g["message"]: sorted(g["paths"]) for g in doc["groups"]} == EXPECTED_GROUPS
    assert doc["stripped_root"] == "Afasa-main" and doc["tag"] == "pre-audit-2026-11-27"

    text = afasa_ops(config, "patch", "plan", str(bundle))
    assert text.returncode == 3
    assert "M docker-compose.yml" in text.stdout
    assert "+    image: traefik:v3.6.7" in text.stdout

    # No terminal to ask on and no --yes: blocked, nothing written.
    before = snapshot(repo)
    asked = afasa_ops(config, "patch", "apply", str(bundle))
    assert asked.returncode == 4
    assert "--yes" in asked.stderr
    assert snapshot(repo) == before

    applied = afasa_ops(config, "patch", "apply", str(bundle), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert f"group `{COMPOSE}`" in applied.stderr  # each group's diff is shown
    assert "verified 8 path(s) byte for byte" in applied.stdout
    assert log_groups(repo, 5) == list(EXPECTED_GROUPS.items())

    again = afasa_ops(config, "patch", "apply", str(bundle), "--yes", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["groups"] == []
    assert afasa_ops(config, "patch", "plan", str(bundle)).returncode == 0


def test_hostile_zip_exit_2_one_line_nothing_written(
    tmp_path: Path, config: Path, repo: Path, tree: Path
) -> None:
    bundle = hostile_zip(tmp_path / "evil.zip", tree, [("Afasa-main/../../x.sh", b"x")])
    before = snapshot(repo)
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "zip slip" in lines[0] and lines[0].startswith("error: ")
    assert snapshot(repo) == before


def test_missing_bundle_is_usage_error(tmp_path: Path, config: Path) -> None:
    out = afasa_ops(config, "patch", "plan", str(tmp_path / "nope.zip"))
    assert out.returncode == 2
    assert "no such file or directory" in out.stderr


def test_dirty_tree_exit_4_lists_files(config: Path, repo: Path, bundle: Path) -> None:
    (repo / "scratch.txt").write_text("x\n")
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes")
    assert out.returncode == 4
    assert "scratch.txt" in out.stderr


def test_conflict_exit_4_then_force(config: Path, repo: Path, bundle: Path) -> None:
    compose = repo / "docker-compose.yml"
    pinned = compose.read_text().replace("traefik:latest", "traefik:v3.6.2")
    compose.write_text(pinned)
    git(repo, "commit", "-qam", "chore(compose): pin traefik")
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes")
    assert out.returncode == 4
    assert "conflict, not overwritten: docker-compose.yml" in out.stdout
    assert compose.read_text() == pinned
    forced = afasa_ops(config, "patch", "apply", str(bundle), "--yes", "--force", "--json")
    assert forced.returncode == 0
    assert [g["message"] for g in json.loads(forced.stdout)["groups"]] == [COMPOSE]
    assert "traefik:v3.6.7" in compose.read_text()


def test_since_unknown_tag_exit_2(config: Path, bundle: Path) -> None:
    out = afasa_ops(config, "patch", "plan", str(bundle), "--since", "pre-audit-1999-01-01")
    assert out.returncode == 2
    assert "pre-audit-1999-01-01" in out.stderr


def test_delete_and_no_commit(tmp_path: Path, config: Path, repo: Path, tree: Path) -> None:
    (tree / "infra/traefik/dynamic.yml").unlink()
    bundle = zip_tree(tree, tmp_path / "b.zip")
    head = git(repo, "rev-parse", "HEAD")
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes", "--delete", "--no-commit")
    assert out.returncode == 0, out.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    staged = git(repo, "diff", "--cached", "--name-status").splitlines()
    assert "D\tinfra/traefik/dynamic.yml" in staged
    assert "A\tservices/tb_adapter/app/sync.py" in staged
