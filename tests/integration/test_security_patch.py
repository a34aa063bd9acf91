"""Hostile bundles and hostile work trees for `patch plan|apply`: destinations through a
symlink (ignored or untracked) or outside the repo, aliases of `.git`, names no filesystem
holds, and a bundle that fails after a group was committed (everything taken back)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from afasa_ops.commands.patch import apply_patch
from afasa_ops.config import load_settings
from afasa_ops.errors import ExitCode
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from tests.conftest import git
from tests.integration.test_patch_cli import afasa_ops
from tests.support.patch_bundles import (
    hostile_zip,
    patched_tree,
    snapshot,
    write_config,
    zip_tree,
)
from tests.support.runbook import SHIPPED

SECRET = "outside-the-repo: tenant A's data\n"


@pytest.fixture
def repo(afasa_repo: Path) -> Path:
    git(afasa_repo, "tag", "pre-audit-2026-11-27")
    git(afasa_repo, "checkout", "-q", "-b", "fix/robust-audit-2026-11-27")
    return afasa_repo


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    return folder


@pytest.fixture
def config(tmp_path: Path, repo: Path) -> Path:
    return write_config(tmp_path, repo)


def tree_listing(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def one_line_refusal(out: object, *needles: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)  # type: ignore[attr-defined]
    err = out.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 2, err  # the refusal, and at most a hint line
    for needle in needles:
        assert needle in err, err
    return err


def test_ignored_symlinked_folder_is_refused_by_plan_and_apply(
    tmp_path: Path, repo: Path, outside: Path, config: Path
) -> None:
    (repo / ".gitignore").write_text("cache/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore cache")
    os.symlink(outside, repo / "cache")
    src = patched_tree(tmp_path / "src")
    (src / "cache").mkdir()
    (src / "cache" / "secret.txt").write_text("overwritten by the bundle\n")
    (src / "cache" / "planted.sh").write_text("echo pwned\n")
    bundle = zip_tree(src, tmp_path / "b.zip")
    before, outside_before = snapshot(repo), tree_listing(outside)
    planned = afasa_ops(config, "patch", "plan", str(bundle))
    one_line_refusal(planned, "'cache'", "symlink")
    assert "tenant A" not in planned.stdout + planned.stderr  # the outside file is never shown
    applied = afasa_ops(config, "patch", "apply", str(bundle), "--yes")
    one_line_refusal(applied, "symlink")
    assert tree_listing(outside) == outside_before and snapshot(repo) == before


def test_untracked_symlinked_folder_is_refused_even_with_allow_dirty(
    tmp_path: Path, repo: Path, outside: Path, config: Path
) -> None:
    os.symlink(outside, repo / "vendor")
    src = patched_tree(tmp_path / "src")
    (src / "vendor").mkdir()
    (src / "vendor" / "secret.txt").write_text("overwritten\n")
    bundle = zip_tree(src, tmp_path / "b.zip")
    before, outside_before = snapshot(repo), tree_listing(outside)
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes", "--allow-dirty")
    one_line_refusal(out, "'vendor'", "symlink")
    assert tree_listing(outside) == outside_before and snapshot(repo) == before


def test_a_symlinked_file_destination_is_refused(
    tmp_path: Path, repo: Path, outside: Path, config: Path
) -> None:
    os.symlink(outside / "secret.txt", repo / "notes.txt")
    src = patched_tree(tmp_path / "src")
    (src / "notes.txt").write_text("overwritten\n")
    bundle = zip_tree(src, tmp_path / "b.zip")
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes", "--allow-dirty")
    one_line_refusal(out, "'notes.txt'", "symlink")
    assert (outside / "secret.txt").read_text() == SECRET


@pytest.mark.parametrize(
    "name",
    [
        ".GIT/config",
        ".Git/hooks/post-checkout",
        ".git /hooks/post-checkout",
        ".git./config",
        ".git. . /config",
        "GIT~1/config",
        ".g\u200cit/config",
        "services/.GIT/config",
        ".git::$INDEX_ALLOCATION/config",
        ".AFASA-OPS/lock",
    ],
)
def test_aliases_of_the_git_folder_are_refused(
    tmp_path: Path, repo: Path, config: Path, name: str
) -> None:
    src = patched_tree(tmp_path / "src")
    bundle = hostile_zip(tmp_path / "b.zip", src, [(f"Afasa-main/{name}", b"[core]\n")])
    before = snapshot(repo)
    for verb in ("plan", "apply"):
        out = afasa_ops(config, "patch", verb, str(bundle), *(["--yes"] if verb == "apply" else []))
        one_line_refusal(out, "filesystem")
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("services/" + "n" * 297 + ".py", "300-byte name"),
        ("a/" * 2000 + "deep.txt", "2002 folders deep"),
        (("c" * 250 + "/") * 17 + "f", "bytes long"),
    ],
    ids=["300-character name", "2000-level path", "4000-byte path"],
)
def test_impossible_names_are_one_line_refusals(
    tmp_path: Path, repo: Path, config: Path, name: str, says: str
) -> None:
    src = patched_tree(tmp_path / "src")
    bundle = hostile_zip(tmp_path / "b.zip", src, [(f"Afasa-main/{name}", b"x")])
    before = snapshot(repo)
    for verb in ("plan", "apply"):
        out = afasa_ops(config, "patch", verb, str(bundle), *(["--yes"] if verb == "apply" else []))
        err = one_line_refusal(out, says)
        assert len(err) < 600  # a huge name is cut short, not printed whole
    assert snapshot(repo) == before


def test_a_deep_directory_bundle_is_refused_before_the_walk_fails(
    tmp_path: Path, repo: Path, config: Path
) -> None:
    src = patched_tree(tmp_path / "src")
    deep = src.joinpath(*(["d"] * 80))
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("x")
    out = afasa_ops(config, "patch", "plan", str(src))
    one_line_refusal(out, "folders deep")


def test_an_untracked_folder_where_the_bundle_has_a_file_is_refused_before_any_write(
    tmp_path: Path, repo: Path, config: Path
) -> None:
    src = patched_tree(tmp_path / "src")
    # The last group's file: without the check, three groups would be committed first.
    (repo / "docs" / "PATCH-NOTES.md").mkdir(parents=True)
    bundle = zip_tree(src, tmp_path / "b.zip")
    before = snapshot(repo)
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes", "--allow-dirty")
    one_line_refusal(out, "PATCH-NOTES.md", "is a folder here")
    assert snapshot(repo) == before


REFUSE_REPORT_HOOK = """#!/bin/sh
# A policy hook: no commit whose subject mentions the report service.
[ "$1" = prepared ] || exit 0
while read -r old new ref; do
  case "$ref" in refs/heads/*) ;; *) continue ;; esac
  if git log -1 --format=%s "$new" 2>/dev/null | grep -q report; then
    echo "policy: report changes need a review" >&2
    exit 1
  fi
done
exit 0
"""


def test_a_group_failing_after_others_were_committed_undoes_them_all(
    tmp_path: Path, repo: Path, config: Path
) -> None:
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(REFUSE_REPORT_HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    bundle = zip_tree(patched_tree(tmp_path / "src"), tmp_path / "b.zip")
    start = git(repo, "rev-parse", "HEAD")
    before = snapshot(repo)
    out = afasa_ops(config, "patch", "apply", str(bundle), "--yes")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "git commit failed: fatal: ref updates aborted by hook" in out.stderr
    # Two groups (db, tb_adapter) were committed before the report group failed.
    assert "undid 2 commit(s)" in out.stderr and start[:12] in out.stderr
    assert git(repo, "rev-parse", "HEAD") == start
    assert snapshot(repo) == before
    journal = next((repo / ".afasa-ops" / "runs").glob("*/journal.jsonl")).read_text()
    undone = [json.loads(line) for line in journal.splitlines() if '"patch_undone"' in line]
    assert len(undone) == 1 and undone[0]["start"] == start and len(undone[0]["commits"]) == 2


def test_a_folder_swapped_for_a_symlink_midway_is_refused_at_the_write_and_undone(
    tmp_path: Path, repo: Path, outside: Path
) -> None:
    from afasa_ops.patch.apply import PatchUndone

    bundle = zip_tree(patched_tree(tmp_path / "src"), tmp_path / "b.zip")
    start = git(repo, "rev-parse", "HEAD")
    before, outside_before = snapshot(repo), tree_listing(outside)
    asked: list[str] = []

    def confirm(question: str) -> bool:
        asked.append(question)
        if "remaining patch bundle changes" in question:
            # Between the plan and the last group's write, docs/ becomes a way out.
            os.symlink(outside, repo / "docs")
        return True

    ctx = Context(
        load_settings(write_config(tmp_path, repo)),
        Options(yes=False, interactive=True),
        confirm=confirm,
    )
    with pytest.raises(PatchUndone) as info:
        apply_patch(ctx, load_runbook(SHIPPED), bundle)
    assert info.value.exit_code == ExitCode.USAGE
    assert "'docs'" in str(info.value) and "undid 4 commit(s)" in str(info.value)
    assert len(asked) == 5
    assert tree_listing(outside) == outside_before
    assert git(repo, "rev-parse", "HEAD") == start
    (repo / "docs").unlink()  # the swapped-in link is not ours to remove
    assert snapshot(repo) == before
