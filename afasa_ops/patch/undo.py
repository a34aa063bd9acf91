"""Taking back a patch apply that failed midway: the branch back at the starting commit, and
the index and work tree of every path the apply touched as they were. Unrelated changes an
`--allow-dirty` apply left alone stay as they are."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from afasa_ops.infra.git import GitRepo


@dataclass(frozen=True)
class Undone:
    start: str
    commits: list[str]
    paths: list[str]
    error: str | None = None  # why the undo itself failed, if it did

    def summary(self, branch: str) -> str:
        if self.error is not None:
            return (
                f"undoing failed too ({self.error}); the branch {branch} was at "
                f"{self.start[:12]} before the apply: `git reset --hard {self.start[:12]}` "
                "restores it"
            )
        what = f"undid {len(self.commits)} commit(s)" if self.commits else "nothing was committed"
        return (
            f"{what}: {branch} is back at {self.start[:12]} and the "
            f"{len(self.paths)} touched path(s) are as they were"
        )


def undo_apply(git: GitRepo, start: str, touched: list[str]) -> Undone:
    """Move the branch back to `start` and restore `touched` in the index and work tree."""
    commits: list[str] = []
    try:
        commits = git.commits_since(start)
        if commits:
            # --soft: only the branch moves; unrelated work in the index and tree is kept.
            git.move_branch(start)
        if touched:
            _restore_paths(git, start, touched)
    except Exception as exc:
        return Undone(start, commits, touched, f"{type(exc).__name__}: {exc}")
    return Undone(start, commits, touched)


def _restore_paths(git: GitRepo, start: str, touched: list[str]) -> None:
    root = git.work_tree
    before = git.blobs_at(start, touched)
    existed = [p for p in touched if before[p] is not None]
    added = [p for p in touched if p not in existed]
    for chunk in _chunks(touched):
        git.unstage_to(start, chunk)
    for chunk in _chunks(existed):
        git.checkout_paths(start, chunk)
    for rel in added:
        target = root / rel
        if target.is_file() and not target.is_symlink():
            target.unlink()
        _remove_empty_parents(root, target.parent)


def _remove_empty_parents(root: Path, folder: Path) -> None:
    """Folders the apply created for new files go with them (only while empty)."""
    while folder != root and folder.is_relative_to(root):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.parent


def _chunks(paths: list[str], size: int = 500) -> list[list[str]]:
    return [paths[i : i + size] for i in range(0, len(paths), size)]
