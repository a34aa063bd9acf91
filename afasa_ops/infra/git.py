"""The Git driver (GitPython). Errors are translated into one-line AfasaOpsErrors here."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.redact import redactor


@contextmanager
def _translated(action: str) -> Iterator[None]:
    import git

    try:
        yield
    except git.GitCommandError as exc:
        detail = [
            ln.strip().removeprefix("stderr:").removeprefix("stdout:").strip().strip("'").strip()
            for ln in (exc.stderr or exc.stdout or str(exc)).strip().splitlines()
        ]
        # git's own reason is the `fatal:`/`error:` line; later lines are advice.
        reason = next((ln for ln in detail if ln.startswith(("fatal:", "error:"))), None)
        shown = reason or (detail[-1] if detail else str(exc))
        raise DriverError(f"git {action} failed: {redactor.redact(shown)}") from exc
    except git.InvalidGitRepositoryError as exc:
        raise BlockedError(
            f"{exc}: not a git work tree", hint="run afasa-ops on a git checkout"
        ) from exc


@dataclass
class GitRepo:
    path: Path

    def __post_init__(self) -> None:
        import git

        try:
            self.repo = git.Repo(self.path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise BlockedError(
                f"{self.path} is not a git work tree", hint="set [repo] path to an AFASA checkout"
            ) from None

    def head_commit(self) -> str:
        with _translated("rev-parse HEAD"):
            return self.repo.head.commit.hexsha

    def current_branch(self) -> str | None:
        if self.repo.head.is_detached:
            return None
        return self.repo.active_branch.name

    def dirty_files(self) -> list[str]:
        """Modified, staged and untracked files (ignored ones excluded)."""
        with _translated("status"):
            out = self.repo.git.status("--porcelain", "--untracked-files=all")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def branch_commit(self, name: str) -> str | None:
        ref = next((h for h in self.repo.heads if h.name == name), None)
        return ref.commit.hexsha if ref else None

    def tag_commit(self, name: str) -> str | None:
        ref = next((t for t in self.repo.tags if t.name == name), None)
        return ref.commit.hexsha if ref else None

    def create_branch(self, name: str, at: str) -> None:
        with _translated(f"branch {name}"):
            self.repo.create_head(name, at)

    def checkout(self, name: str) -> None:
        with _translated(f"checkout {name}"):
            self.repo.git.checkout(name)

    def create_tag(self, name: str, at: str, message: str | None = None) -> None:
        with _translated(f"tag {name}"):
            self.repo.create_tag(name, ref=at, message=message)

    def delete_tag(self, name: str) -> None:
        with _translated(f"tag -d {name}"):
            self.repo.delete_tag(self.repo.tags[name])

    def remotes(self) -> list[str]:
        return [r.name for r in self.repo.remotes]

    def stage(self, paths: list[str]) -> None:
        with _translated("add"):
            self.repo.git.add("--all", "--", *paths)

    def staged_diff(self, paths: list[str] | None = None) -> str:
        with _translated("diff --cached"):
            return str(self.repo.git.diff("--cached", "--", *(paths or [])))

    def commit(self, message: str) -> str:
        with _translated("commit"):
            self.repo.git.commit("-m", message, "--no-verify")
            return self.repo.head.commit.hexsha

    def diff(self, base: str, paths: list[str] | None = None) -> str:
        with _translated(f"diff {base}"):
            return str(self.repo.git.diff(base, "--", *(paths or [])))

    # -- added for phase 0 and rollback ------------------------------------------------------
    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        import git

        try:
            self.repo.git.merge_base("--is-ancestor", ancestor, descendant)
            return True
        except git.GitCommandError:
            return False

    def tags_matching(self, pattern: str) -> list[tuple[str, str]]:
        """(tag, commit) for tags matching a glob, newest tag first (creation date)."""
        with _translated(f"tag --list {pattern}"):
            out = self.repo.git.tag(
                "--list",
                pattern,
                "--sort=-creatordate",
                "--format=%(refname:short)",
            )
        found = []
        for name in out.splitlines():
            commit = self.tag_commit(name)
            if commit:
                found.append((name, commit))
        return found

    def remote_tag_commit(self, remote: str, tag: str, timeout_s: float = 60) -> str | None:
        """The commit a remote's tag points at (peeled), or None when the remote lacks it."""
        with _translated(f"ls-remote {remote}"):
            out = str(
                self.repo.git.ls_remote(
                    "--tags",
                    remote,
                    f"refs/tags/{tag}",
                    f"refs/tags/{tag}^{{}}",
                    kill_after_timeout=timeout_s,
                )
            )
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            refs[ref] = sha
        return refs.get(f"refs/tags/{tag}^{{}}") or refs.get(f"refs/tags/{tag}")

    def push_tag(self, remote: str, tag: str, timeout_s: float = 120) -> str:
        with _translated(f"push {remote} {tag}"):
            return str(self.repo.git.push(remote, f"refs/tags/{tag}", kill_after_timeout=timeout_s))

    def restore_tree(self, source: str) -> None:
        """Make the index and work tree match `source` (tracked files only; untracked stay)."""
        with _translated(f"restore --source={source}"):
            self.repo.git.restore(f"--source={source}", "--staged", "--worktree", "--", ".")

    def changed_between(self, a: str, b: str) -> list[str]:
        with _translated(f"diff --name-only {a} {b}"):
            out = self.repo.git.diff("--name-only", a, b)
        return [line for line in out.splitlines() if line]

    # -- read-only queries of the patch planner and phase 3 ---------------------------------
    def tracked_files(self) -> list[str]:
        with _translated("ls-files"):
            out = str(self.repo.git.ls_files("-z"))
        return sorted(p for p in out.split("\0") if p)

    def staged_files(self) -> list[str]:
        with _translated("diff --cached --name-only"):
            out = str(self.repo.git.diff("--cached", "--name-only", "-z"))
        return [p for p in out.split("\0") if p]

    def newest_tag(self, pattern: str) -> str | None:
        """The most recently created tag matching a glob (tagger date, or commit date if light)."""
        with _translated("for-each-ref refs/tags"):
            out = str(
                self.repo.git.for_each_ref(
                    "--sort=-creatordate", "--format=%(refname:short)", "refs/tags/"
                )
            )
        return next((n for n in out.splitlines() if fnmatch.fnmatchcase(n, pattern)), None)

    def changed_since(self, rev: str) -> set[str]:
        """Paths whose content differs between `rev` and the work tree (renames as delete + add)."""
        with _translated(f"diff --name-only {rev}"):
            out = str(self.repo.git.diff("--name-only", "--no-renames", "-z", rev, "--"))
        return {p for p in out.split("\0") if p}

    def blob_at(self, rev: str, path: str) -> bytes | None:
        """A file's bytes at `rev`, or None when it did not exist there."""
        try:
            blob = self.repo.commit(rev).tree / path
        except KeyError:
            return None
        data: bytes = blob.data_stream.read()
        return data

    def is_revision(self, rev: str) -> bool:
        try:
            self.repo.commit(rev)
        except Exception:  # gitdb/GitPython raise several types for an unknown name
            return False
        return True

    def ignored_paths(self, paths: list[str]) -> set[str]:
        """The paths the repo's .gitignore rules ignore (a bundle's .env must never be committed)."""
        out: set[str] = set()
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            with _translated("check-ignore"):
                # Exit 1 means "none ignored": not an error here.
                _, stdout, _ = self.repo.git.check_ignore(
                    "--no-index", "--", *chunk, with_extended_output=True, with_exceptions=False
                )
            out.update(line for line in str(stdout).splitlines() if line)
        return out

    def require_identity(self) -> None:
        """A commit needs a committer: without user.name/user.email it fails after the writes."""
        import git

        try:
            self.repo.git.var("GIT_COMMITTER_IDENT")
        except git.GitCommandError:
            raise BlockedError(
                f"{self.path}: git has no committer identity (user.name and user.email)",
                hint="git config user.name ... and git config user.email ... in the repo",
            ) from None

    @property
    def git_dir(self) -> Path:
        return Path(self.repo.git_dir)

    @property
    def work_tree(self) -> Path:
        return Path(self.repo.working_tree_dir or self.path)

    # -- taking back a failed patch apply --------------------------------------------------
    def commits_since(self, start: str) -> list[str]:
        with _translated(f"rev-list {start}..HEAD"):
            out = str(self.repo.git.rev_list(f"{start}..HEAD"))
        return [line for line in out.splitlines() if line]

    def move_branch(self, start: str) -> None:
        """`reset --soft`: only the branch moves; the index and work tree are kept."""
        with _translated(f"reset --soft {start}"):
            self.repo.git.reset("--soft", start)

    def unstage_to(self, start: str, paths: list[str]) -> None:
        """The index entries of `paths` back to `start` (paths new since then leave it)."""
        with _translated("reset -- <paths>"):
            self.repo.git.reset("-q", start, "--", *paths)

    def checkout_paths(self, start: str, paths: list[str]) -> None:
        with _translated("checkout -- <paths>"):
            self.repo.git.checkout(start, "--", *paths)


def clean_tree_hash(path: Path) -> str | None:
    """The git tree hash of a directory at HEAD of the repository holding it; None when it
    has uncommitted changes or is not in git (what decides whether a rebuild could change an
    image built from it)."""
    import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
        root = Path(repo.working_tree_dir or path).resolve()
        rel = path.resolve().relative_to(root).as_posix() if path.resolve() != root else ""
        tree = repo.git.rev_parse(f"HEAD:{rel}" if rel else "HEAD^{tree}")
        dirty = repo.git.status("--porcelain", "--", rel or ".")
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, ValueError):
        return None
    return None if dirty.strip() else str(tree).strip()
