"""The patch plan: every path as added, modified, unchanged or only-in-repo, with its diff,
its commit group and, against the pre-audit tag, whether it is a conflict. Read-only."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afasa_ops.infra.git import GitRepo
from afasa_ops.patch.bundle import Bundle, BundleRefused
from afasa_ops.patch.groups import Grouper
from afasa_ops.patch.paths import check_destinations

ADDED = "added"
MODIFIED = "modified"
UNCHANGED = "unchanged"
ONLY_IN_REPO = "only-in-repo"


@dataclass
class FileChange:
    path: str
    status: str
    group: str
    diff: str = ""
    # Why this path must not be overwritten without --force (None: no conflict).
    conflict: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "group": self.group,
            "conflict": self.conflict,
            "diff": self.diff,
        }


@dataclass
class PatchPlan:
    repo: Path
    bundle: Bundle
    grouper: Grouper
    tag: str | None
    changes: list[FileChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def by_status(self, status: str) -> list[FileChange]:
        return [c for c in self.changes if c.status == status]

    @property
    def writes(self) -> list[FileChange]:
        return [c for c in self.changes if c.status in (ADDED, MODIFIED)]

    @property
    def conflicts(self) -> list[FileChange]:
        return [c for c in self.changes if c.conflict]

    def groups(self) -> list[tuple[str, list[FileChange]]]:
        """Changed paths per commit group, in commit order (only-in-repo included)."""
        out = []
        for message in self.grouper.messages():
            members = [c for c in self.changes if c.group == message and c.status != UNCHANGED]
            if members:
                out.append((message, members))
        return out

    def counts(self) -> dict[str, int]:
        return {s: len(self.by_status(s)) for s in (ADDED, MODIFIED, UNCHANGED, ONLY_IN_REPO)}

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": str(self.repo),
            "bundle": str(self.bundle.source),
            "bundle_kind": self.bundle.kind,
            "stripped_root": self.bundle.stripped_root,
            "ignored": self.bundle.ignored,
            "tag": self.tag,
            "notes": self.notes,
            "counts": self.counts(),
            "conflicts": [c.path for c in self.conflicts],
            "groups": [
                {"message": m, "paths": [c.path for c in members]} for m, members in self.groups()
            ],
            "files": [c.to_json() for c in self.changes],
        }


def make_plan(repo_path: Path, bundle: Bundle, grouper: Grouper, tag: str | None) -> PatchPlan:
    """Compare the bundle with the work tree; `tag` (already resolved) enables conflicts."""
    git = GitRepo(repo_path)
    tracked = git.tracked_files()
    _check_against_repo(bundle, tracked)
    # Before any file is read or git is asked about a path: nothing may go through a symlink
    # or outside the repo (a symlinked folder that .gitignore hides included).
    check_paths(repo_path, bundle, tracked)
    plan = PatchPlan(repo_path, bundle, grouper, tag)
    changed_after_tag = git.changed_since(tag) if tag else set()
    ignored = git.ignored_paths(sorted(set(bundle.files) - set(tracked)))
    if ignored:
        plan.notes.append(
            "left out, ignored by the repo's .gitignore: " + ", ".join(sorted(ignored))
        )
    for path in sorted((set(bundle.files) - ignored) | set(tracked)):
        entry = bundle.files.get(path)
        current = _read(repo_path / path)
        group = grouper.group_of(path)
        if entry is None:
            if current is None:
                continue  # tracked but already deleted in the work tree: nothing to compare
            change = FileChange(path, ONLY_IN_REPO, group, byte_diff(path, current, None))
        elif current == entry.data:
            change = FileChange(path, UNCHANGED, group)
        else:
            status = ADDED if current is None else MODIFIED
            change = FileChange(path, status, group, byte_diff(path, current, entry.data))
        if change.status != UNCHANGED and path in changed_after_tag:
            change.conflict = _conflict_reason(git, tag or "", path, entry.data if entry else None)
        plan.changes.append(change)
    if tag is None:
        plan.notes.append("no pre-audit tag found: conflict detection is off")
    if bundle.stripped_root:
        plan.notes.append(f"stripped the top-level folder {bundle.stripped_root}/")
    return plan


def _conflict_reason(git: GitRepo, tag: str, path: str, wanted: bytes | None) -> str:
    base = git.blob_at(tag, path)
    if wanted is None:
        return f"changed in the repo since {tag}; --delete would remove that work"
    if base == wanted:
        return f"changed in the repo since {tag}; the bundle has the {tag} version (would revert)"
    return f"changed in the repo since {tag} and also changed by the bundle"


def check_paths(repo_path: Path, bundle: Bundle, tracked: list[str]) -> None:
    """Every bundle destination, and every tracked path the plan reads, stays in the repo."""
    root = repo_path.resolve()

    def refuse(message: str) -> Exception:
        return BundleRefused(bundle.source, message)

    check_destinations(root, sorted(bundle.files), refuse)
    only_tracked = sorted(set(tracked) - set(bundle.files))
    check_destinations(root, only_tracked, refuse, tracked_only=True)


def _check_against_repo(bundle: Bundle, tracked: list[str]) -> None:
    """Refuse what cannot be written on this repo: case twins and file/folder clashes."""
    folded = {p.casefold(): p for p in tracked}
    files = set(tracked)
    folders = {str(parent) for p in tracked for parent in Path(p).parents}
    for path in bundle.files:
        twin = folded.get(path.casefold())
        if twin is not None and twin != path:
            raise BundleRefused(
                bundle.source,
                f"{path!r} collides with the repo's {twin!r} on a case-insensitive filesystem",
            )
        if path in folders:
            raise BundleRefused(bundle.source, f"{path!r} is a file in the bundle, a folder here")
        for parent in Path(path).parents:
            if str(parent) in files:
                raise BundleRefused(
                    bundle.source, f"{str(parent)!r} is a file here, a folder in the bundle"
                )


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() and not path.is_symlink() else None


def byte_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff of two versions (None: absent); binary content is named, not dumped."""
    try:
        old_text = (old or b"").decode()
        new_text = (new or b"").decode()
    except UnicodeDecodeError:
        return f"Binary files a/{path} and b/{path} differ\n"
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a/{path}",
        tofile="/dev/null" if new is None else f"b/{path}",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
