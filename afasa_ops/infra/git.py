"""The Git driver: the `git` CLI, one process per question. Errors are translated into
one-line AfasaOpsErrors here (git's own `fatal:`/`error:` line, redacted).

Every call GitPython made was a git process too (status, add, diff, commit...), so a library
bought nothing but its import, a measurable part of a converged rerun."""

from __future__ import annotations

import fnmatch
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from afasa_ops.errors import BlockedError, DriverError
from afasa_ops.redact import redactor

# Never wait for a password on a terminal nobody watches (push and ls-remote in CI).
_ENV = {"GIT_TERMINAL_PROMPT": "0"}
_TIMEOUT_S = 300.0


def _git(
    cwd: Path, *args: str, timeout_s: float = _TIMEOUT_S, stdin: bytes | None = None
) -> tuple[int, bytes, str]:
    """Run git in `cwd`: (exit code, stdout bytes, stderr text)."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env={**os.environ, **_ENV},
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        raise BlockedError(
            "git is not installed", hint="install git (apt-get install git)"
        ) from None
    except subprocess.TimeoutExpired:
        raise DriverError(f"git {args[0]} failed: no answer in {timeout_s:g}s") from None
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


def _failure(action: str, stdout: str, stderr: str) -> DriverError:
    lines = [ln.strip() for ln in (stderr or stdout).strip().splitlines() if ln.strip()]
    # git's own reason is the `fatal:`/`error:` line; later lines are advice.
    reason = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), None)
    shown = reason or (lines[-1] if lines else "exit status non-zero")
    return DriverError(f"git {action} failed: {redactor.redact(shown)}")


def _batch_blobs(data: bytes, count: int) -> list[bytes | None]:
    """`cat-file --batch` answers in order: `<oid> <type> <size>` then the bytes, or
    `<name> missing`. A tree or other non-blob counts as no file."""
    found: list[bytes | None] = []
    at = 0
    for _ in range(count):
        end = data.index(b"\n", at)
        header = data[at:end].split(b" ")
        at = end + 1
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            found.append(data[at : at + size] if header[1] == b"blob" else None)
            at += size + 1  # the content, then a newline
        else:
            found.append(None)  # `missing` (or `ambiguous`)
    return found


def _text(data: bytes) -> str:
    # Paths and diffs are bytes; names that are not UTF-8 survive a round trip.
    return data.decode("utf-8", errors="surrogateescape")


@dataclass
class GitRepo:
    path: Path
    _toplevel: Path = field(init=False, repr=False)
    _git_dir: Path = field(init=False, repr=False)

    def __post_init__(self) -> None:
        hint = "set [repo] path to an AFASA checkout"
        if not Path(self.path).is_dir():
            raise BlockedError(f"{self.path} is not a git work tree", hint=hint)
        code, out, err = _git(Path(self.path), "rev-parse", "--show-toplevel", "--absolute-git-dir")
        if code != 0:
            # git's reason: not a repository, or one it refuses (`dubious ownership`: the
            # hint is git's own `safe.directory` advice).
            reason = _failure("rev-parse", "", err).message.removeprefix("git rev-parse failed: ")
            raise BlockedError(f"{self.path} is not a git work tree: {reason}", hint=hint)
        lines = _text(out).splitlines()
        # The checkout's root itself, not a folder inside one (a wrong [repo] path).
        if len(lines) != 2 or Path(lines[0]) != Path(self.path).resolve():
            raise BlockedError(
                f"{self.path} is not a git work tree: it is a folder inside {lines[0]}", hint=hint
            )
        self._toplevel, self._git_dir = Path(lines[0]), Path(lines[1])

    # -- plumbing -----------------------------------------------------------------------------
    def _run(self, action: str, *args: str, timeout_s: float = _TIMEOUT_S) -> str:
        """git's stdout (its one trailing newline dropped), or DriverError naming `action`."""
        code, out, err = _git(self._toplevel, *args, timeout_s=timeout_s)
        text = _text(out)
        if code != 0:
            raise _failure(action, text, err)
        return text.removesuffix("\n")

    def _ok(self, *args: str) -> str | None:
        """stdout when git exits 0, None otherwise (a question answered with no)."""
        code, out, _ = _git(self._toplevel, *args)
        return _text(out).strip() if code == 0 else None

    # -- reads --------------------------------------------------------------------------------
    def head_commit(self) -> str:
        return self._run("rev-parse HEAD", "rev-parse", "--verify", "HEAD^{commit}")

    def current_branch(self) -> str | None:
        return self._ok("symbolic-ref", "--short", "-q", "HEAD") or None

    def dirty_files(self) -> list[str]:
        """Modified, staged and untracked files (ignored ones excluded)."""
        out = self._run("status", "status", "--porcelain", "--untracked-files=all")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def branch_commit(self, name: str) -> str | None:
        return self._ok("rev-parse", "--verify", "-q", f"refs/heads/{name}^{{commit}}")

    def tag_commit(self, name: str) -> str | None:
        """The commit a tag points at (an annotated tag peeled)."""
        return self._ok("rev-parse", "--verify", "-q", f"refs/tags/{name}^{{commit}}")

    def remotes(self) -> list[str]:
        return self._run("remote", "remote").split()

    def staged_diff(self, paths: list[str] | None = None) -> str:
        return self._run("diff --cached", "diff", "--cached", "--", *(paths or []))

    def diff(self, base: str, paths: list[str] | None = None) -> str:
        return self._run(f"diff {base}", "diff", base, "--", *(paths or []))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._ok("merge-base", "--is-ancestor", ancestor, descendant) is not None

    def tags_matching(self, pattern: str) -> list[tuple[str, str]]:
        """(tag, commit) for tags matching a glob, newest tag first (creation date). One
        for-each-ref: an annotated tag's commit is its peeled `*objectname`."""
        out = self._run(
            f"for-each-ref refs/tags/{pattern}",
            "for-each-ref", "--sort=-creatordate",
            "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname) %(refname)",
            "refs/tags/",
        )  # fmt: skip
        found = []
        for line in out.splitlines():
            kind, sha, peeled_kind, peeled, ref = line.split(" ", 4)
            name = ref.removeprefix("refs/tags/")
            if not fnmatch.fnmatchcase(name, pattern):
                continue
            target, commit = (peeled_kind, peeled) if kind == "tag" else (kind, sha)
            if target == "tag":  # a tag of a tag: peel it all the way
                commit = self.tag_commit(name) or ""
                target = "commit" if commit else target
            if target == "commit":
                found.append((name, commit))
        return found

    def remote_tag_commit(self, remote: str, tag: str, timeout_s: float = 60) -> str | None:
        """The commit a remote's tag points at (peeled), or None when the remote lacks it."""
        out = self._run(
            f"ls-remote {remote}",
            "ls-remote", "--tags", remote, f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}",
            timeout_s=timeout_s,
        )  # fmt: skip
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            refs[ref] = sha
        return refs.get(f"refs/tags/{tag}^{{}}") or refs.get(f"refs/tags/{tag}")

    def changed_between(self, a: str, b: str) -> list[str]:
        out = self._run(f"diff --name-only {a} {b}", "diff", "--name-only", a, b)
        return [line for line in out.splitlines() if line]

    def tracked_files(self) -> list[str]:
        out = self._run("ls-files", "ls-files", "-z")
        return sorted(p for p in out.split("\0") if p)

    def staged_files(self) -> list[str]:
        out = self._run("diff --cached --name-only", "diff", "--cached", "--name-only", "-z")
        return [p for p in out.split("\0") if p]

    def newest_tag(self, pattern: str) -> str | None:
        """The most recently created tag matching a glob (tagger date, or commit date if light)."""
        out = self._run(
            "for-each-ref refs/tags",
            "for-each-ref", "--sort=-creatordate", "--format=%(refname:short)", "refs/tags/",
        )  # fmt: skip
        return next((n for n in out.splitlines() if fnmatch.fnmatchcase(n, pattern)), None)

    def changed_since(self, rev: str) -> set[str]:
        """Paths whose content differs between `rev` and the work tree (renames as delete + add)."""
        out = self._run(
            f"diff --name-only {rev}", "diff", "--name-only", "--no-renames", "-z", rev, "--"
        )
        return {p for p in out.split("\0") if p}

    def blob_at(self, rev: str, path: str) -> bytes | None:
        """A file's bytes at `rev`, or None when it did not exist there."""
        return self.blobs_at(rev, [path])[path]

    def blobs_at(self, rev: str, paths: list[str]) -> dict[str, bytes | None]:
        """Files' bytes at `rev` (None: not a file there), read by one `cat-file --batch`."""
        commit = self._ok("rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
        if commit is None:
            raise DriverError(f"git cat-file failed: {rev!r} is not a commit of this repository")
        out: dict[str, bytes | None] = {}
        # The batch protocol is line-based: a name holding a newline is asked on its own.
        batched = [p for p in paths if "\n" not in p]
        for path in paths:
            if path not in batched:
                code, data, _ = _git(self._toplevel, "cat-file", "blob", f"{commit}:{path}")
                out[path] = data if code == 0 else None
        if batched:
            request = "".join(f"{commit}:{p}\n" for p in batched).encode("utf-8", "surrogateescape")
            code, data, err = _git(self._toplevel, "cat-file", "--batch", stdin=request)
            if code != 0:
                raise _failure("cat-file --batch", "", err)
            out.update(zip(batched, _batch_blobs(data, len(batched)), strict=True))
        return out

    def is_revision(self, rev: str) -> bool:
        return self._ok("rev-parse", "--verify", "-q", f"{rev}^{{commit}}") is not None

    def ignored_paths(self, paths: list[str]) -> set[str]:
        """The paths the repo's .gitignore rules ignore (a bundle's .env must never be committed)."""
        out: set[str] = set()
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            code, stdout, err = _git(self._toplevel, "check-ignore", "--no-index", "--", *chunk)
            if code not in (0, 1):  # 1: none of them is ignored
                raise _failure("check-ignore", _text(stdout), err)
            out.update(line for line in _text(stdout).splitlines() if line)
        return out

    def require_identity(self) -> None:
        """A commit needs a committer: without user.name/user.email it fails after the writes."""
        if self._ok("var", "GIT_COMMITTER_IDENT") is None:
            raise BlockedError(
                f"{self.path}: git has no committer identity (user.name and user.email)",
                hint="git config user.name ... and git config user.email ... in the repo",
            )

    @property
    def git_dir(self) -> Path:
        return self._git_dir

    @property
    def work_tree(self) -> Path:
        return self._toplevel

    def commits_since(self, start: str) -> list[str]:
        out = self._run(f"rev-list {start}..HEAD", "rev-list", f"{start}..HEAD")
        return [line for line in out.splitlines() if line]

    # -- writes -------------------------------------------------------------------------------
    def create_branch(self, name: str, at: str) -> None:
        self._run(f"branch {name}", "branch", name, at)

    def checkout(self, name: str) -> None:
        self._run(f"checkout {name}", "checkout", "-q", name)

    def create_tag(self, name: str, at: str, message: str | None = None) -> None:
        """An annotated tag when there is a message, a lightweight one otherwise."""
        annotated = ["-a", "-m", message] if message is not None else []
        self._run(f"tag {name}", "tag", *annotated, name, at)

    def delete_tag(self, name: str) -> None:
        self._run(f"tag -d {name}", "tag", "-d", name)

    def stage(self, paths: list[str]) -> None:
        self._run("add", "add", "--all", "--", *paths)

    def commit(self, message: str) -> str:
        self._run("commit", "commit", "-q", "-m", message, "--no-verify")
        return self.head_commit()

    def push_tag(self, remote: str, tag: str, timeout_s: float = 120) -> str:
        return self._run(
            f"push {remote} {tag}", "push", remote, f"refs/tags/{tag}", timeout_s=timeout_s
        )

    def restore_tree(self, source: str) -> None:
        """Make the index and work tree match `source` (tracked files only; untracked stay)."""
        self._run(
            f"restore --source={source}",
            "restore", f"--source={source}", "--staged", "--worktree", "--", ".",
        )  # fmt: skip

    def move_branch(self, start: str) -> None:
        """`reset --soft`: only the branch moves; the index and work tree are kept."""
        self._run(f"reset --soft {start}", "reset", "--soft", start)

    def unstage_to(self, start: str, paths: list[str]) -> None:
        """The index entries of `paths` back to `start` (paths new since then leave it)."""
        self._run("reset -- <paths>", "reset", "-q", start, "--", *paths)

    def checkout_paths(self, start: str, paths: list[str]) -> None:
        self._run("checkout -- <paths>", "checkout", start, "--", *paths)


def clean_tree_hash(path: Path) -> str | None:
    """The git tree hash of a directory at HEAD of the repository holding it; None when it
    has uncommitted changes or is not in git (what decides whether a rebuild could change an
    image built from it)."""
    if not path.is_dir():
        return None
    code, out, _ = _git(path, "rev-parse", "--show-prefix")
    if code != 0:
        return None
    rel = _text(out).strip().rstrip("/")
    code, tree, _ = _git(
        path, "rev-parse", "--verify", "-q", f"HEAD:{rel}" if rel else "HEAD^{tree}"
    )
    if code != 0:
        return None
    code, dirty, _ = _git(path, "status", "--porcelain", "--", ".")
    if code != 0 or dirty.strip():
        return None
    return _text(tree).strip()
