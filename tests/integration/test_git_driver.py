"""The Git driver (infra/git.py) on real repositories: the checkout's root only, git's own
reason in a failure, tags peeled, blobs at a revision, non-UTF-8 names, and the tree hash
phase 3 keys rebuilds on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.infra.git import GitRepo, clean_tree_hash
from tests.conftest import git, make_git_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    (source / "app").mkdir(parents=True)
    (source / "app" / "main.py").write_text("print('hi')\n")
    (source / "docker-compose.yml").write_text("services: {}\n")
    return make_git_repo(source, tmp_path / "checkout")


def test_only_a_checkouts_root_is_a_work_tree(repo: Path, tmp_path: Path) -> None:
    assert GitRepo(repo).work_tree == repo.resolve()
    assert GitRepo(repo).git_dir == (repo / ".git").resolve()
    for wrong in (repo / "app", tmp_path / "missing", tmp_path):
        with pytest.raises(BlockedError, match="is not a git work tree"):
            GitRepo(wrong)
    # Why, in git's words or ours: a folder inside the checkout, or no repository at all.
    with pytest.raises(BlockedError, match=f"it is a folder inside {repo.resolve()}"):
        GitRepo(repo / "app")
    with pytest.raises(BlockedError, match="fatal: not a git repository"):
        GitRepo(tmp_path)


def test_a_failure_names_the_action_and_gits_reason(repo: Path) -> None:
    with pytest.raises(DriverError) as err:
        GitRepo(repo).checkout("no-such-branch")
    assert str(err.value).startswith("git checkout no-such-branch failed: error: pathspec")


def test_reads_and_writes(repo: Path) -> None:
    drv = GitRepo(repo)
    head = drv.head_commit()
    assert head == git(repo, "rev-parse", "HEAD") and drv.current_branch() == "main"
    drv.create_tag("afasa-ops/pre-1", head, message="before the repair")
    drv.create_tag("light", head)
    assert git(repo, "cat-file", "-t", "afasa-ops/pre-1") == "tag"  # annotated
    assert drv.tag_commit("afasa-ops/pre-1") == head  # peeled to its commit
    assert drv.tag_commit("light") == head and drv.tag_commit("absent") is None
    assert drv.tags_matching("afasa-ops/*") == [("afasa-ops/pre-1", head)]

    (repo / "docker-compose.yml").write_text("services: {traefik: {}}\n")
    (repo / "new.txt").write_text("x\n")
    assert sorted(drv.dirty_files()) == ["docker-compose.yml", "new.txt"]
    drv.stage(["docker-compose.yml"])
    assert "+services: {traefik: {}}" in drv.staged_diff()
    assert drv.staged_files() == ["docker-compose.yml"]
    second = drv.commit("fix: pin traefik")
    assert second == drv.head_commit() != head
    assert drv.is_ancestor(head, second) and not drv.is_ancestor(second, head)
    assert drv.changed_between(head, second) == ["docker-compose.yml"]
    assert drv.commits_since(head) == [second]
    assert drv.blob_at(head, "docker-compose.yml") == b"services: {}\n"
    assert drv.blob_at(head, "new.txt") is None
    # Many at once, in one process: a file, one that did not exist, a folder (not a file).
    assert drv.blobs_at(head, ["docker-compose.yml", "new.txt", "app", "app/main.py"]) == {
        "docker-compose.yml": b"services: {}\n",
        "new.txt": None,
        "app": None,
        "app/main.py": b"print('hi')\n",
    }
    with pytest.raises(DriverError, match="is not a commit"):
        drv.blob_at("no-such-rev", "docker-compose.yml")
    assert drv.ignored_paths(["new.txt"]) == set()


def test_names_that_are_not_utf8_survive(repo: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")  # Latin-1, as an old checkout may hold
    (repo / name).write_text("x\n")
    drv = GitRepo(repo)
    drv.stage([name])
    drv.commit("add a latin-1 name")
    assert name in drv.tracked_files()
    assert (repo / drv.tracked_files()[drv.tracked_files().index(name)]).exists()


def test_clean_tree_hash_is_the_folders_tree_at_head_unless_dirty(
    repo: Path, tmp_path: Path
) -> None:
    assert clean_tree_hash(repo / "app") == git(repo, "rev-parse", "HEAD:app")
    assert clean_tree_hash(repo) == git(repo, "rev-parse", "HEAD^{tree}")
    (repo / "app" / "main.py").write_text("print('changed')\n")
    assert clean_tree_hash(repo / "app") is None
    outside = tmp_path / "not-in-git"
    outside.mkdir()
    assert clean_tree_hash(outside) is None
