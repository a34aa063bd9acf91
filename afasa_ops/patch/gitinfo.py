"""The read-only Git queries the patch planner needs, on top of the shared Git driver."""

from __future__ import annotations

import fnmatch
import re

from afasa_ops.errors import BlockedError
from afasa_ops.infra.git import GitRepo, _translated


def tag_glob(pattern: str) -> str:
    """`pre-audit-{date}` (the runbook's tag parameter) -> `pre-audit-*`."""
    return re.sub(r"\{[^}]*\}", "*", pattern)


def tracked_files(repo: GitRepo) -> list[str]:
    with _translated("ls-files"):
        out = str(repo.repo.git.ls_files("-z"))
    return sorted(p for p in out.split("\0") if p)


def staged_files(repo: GitRepo) -> list[str]:
    with _translated("diff --cached --name-only"):
        out = str(repo.repo.git.diff("--cached", "--name-only", "-z"))
    return [p for p in out.split("\0") if p]


def newest_tag(repo: GitRepo, pattern: str) -> str | None:
    """The most recently created tag matching a glob (tagger date, or commit date if light)."""
    with _translated("for-each-ref refs/tags"):
        out = str(
            repo.repo.git.for_each_ref(
                "--sort=-creatordate", "--format=%(refname:short)", "refs/tags/"
            )
        )
    for name in out.splitlines():
        if fnmatch.fnmatchcase(name, pattern):
            return name
    return None


def changed_since(repo: GitRepo, rev: str) -> set[str]:
    """Paths whose content differs between `rev` and the work tree (renames as delete + add)."""
    with _translated(f"diff --name-only {rev}"):
        out = str(repo.repo.git.diff("--name-only", "--no-renames", "-z", rev, "--"))
    return {p for p in out.split("\0") if p}


def blob_at(repo: GitRepo, rev: str, path: str) -> bytes | None:
    """A file's bytes at `rev`, or None when it did not exist there."""
    try:
        blob = repo.repo.commit(rev).tree / path
    except KeyError:
        return None
    data: bytes = blob.data_stream.read()
    return data


def ignored_paths(repo: GitRepo, paths: list[str]) -> set[str]:
    """The paths the repo's .gitignore rules ignore (a bundle's .env must never be committed)."""
    out: set[str] = set()
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        with _translated("check-ignore"):
            # Exit 1 means "none ignored": not an error here.
            _, stdout, _ = repo.repo.git.check_ignore(
                "--no-index", "--", *chunk, with_extended_output=True, with_exceptions=False
            )
        out.update(line for line in str(stdout).splitlines() if line)
    return out


def require_identity(repo: GitRepo) -> None:
    """A commit needs a committer: without user.name/user.email it fails after the writes."""
    import git

    try:
        repo.repo.git.var("GIT_COMMITTER_IDENT")
    except git.GitCommandError:
        raise BlockedError(
            f"{repo.path}: git has no committer identity (user.name and user.email)",
            hint="git config user.name ... and git config user.email ... in the repo",
        ) from None
