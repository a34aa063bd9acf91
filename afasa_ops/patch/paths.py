"""Where a bundle's paths may land: names any filesystem can hold that never mean the git
folder, and destinations resolved against the repo root that never pass through a symlink.

A patch writes inside the repository and nowhere else. Names are checked when the bundle is
read (before anything else looks at them); destinations are checked against the work tree
before the plan reads a single file, and again right before each write, so a folder swapped
for a symlink in between is still refused.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from collections.abc import Callable
from pathlib import Path

# NAME_MAX of every common filesystem, in bytes.
MAX_COMPONENT_BYTES = 255
# PATH_MAX (4096) less room for the temporary name an atomic write puts beside the target.
MAX_PATH_BYTES = 4000
# Deeper than any repository a person keeps; a 2,000-level path is an attack, not a layout.
MAX_DEPTH = 64
# Folders that are never content: git's own and the tool's state.
RESERVED = (".git", ".afasa-ops")
# git's own Windows short name for .git (the 8.3 alias NTFS may answer to).
_SHORT_NAMES = ("git~1",)


def _ignorable(ch: str) -> bool:
    # HFS+ ignores these when comparing names (git CVE-2014-9390: ".g\u200cit" is .git).
    return unicodedata.category(ch) == "Cf"


def folded(component: str) -> str:
    """The name a case-insensitive, Windows or macOS filesystem would compare: case folded,
    ignorable code points dropped, an NTFS stream suffix (`:...`) and trailing dots and
    spaces stripped."""
    name = "".join(ch for ch in unicodedata.normalize("NFC", component) if not _ignorable(ch))
    name = name.split(":", 1)[0].rstrip(" .")
    return name.casefold()


def reserved_alias(component: str) -> str | None:
    """The reserved folder a name stands for when it is not spelled exactly like it
    (`.GIT`, `.git `, `.git.`, `GIT~1`): such an entry is refused, never written."""
    if component in RESERVED:
        return None  # the exact name is dropped as "ignored" by the bundle reader
    key = folded(component)
    if key in RESERVED:
        return key
    if key in _SHORT_NAMES:
        return ".git"
    return None


def name_problem(parts: list[str]) -> str | None:
    """Why these path components cannot be a bundle entry, or None."""
    if len(parts) > MAX_DEPTH:
        return f"is {len(parts)} folders deep (limit {MAX_DEPTH})"
    total = len("/".join(parts).encode("utf-8", "surrogateescape"))
    if total > MAX_PATH_BYTES:
        return f"is {total} bytes long (limit {MAX_PATH_BYTES})"
    for part in parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_COMPONENT_BYTES:
            return f"has a {size}-byte name (filesystems allow {MAX_COMPONENT_BYTES})"
        alias = reserved_alias(part)
        if alias is not None:
            return (
                f"names {part!r}, which is {alias} on a case-insensitive, Windows or macOS "
                "filesystem"
            )
    return None


def destination_problem(root: Path, rel: str, *, tracked_only: bool = False) -> str | None:
    """Why writing `rel` under `root` (already resolved) could touch anything outside the repo
    or clobber what is there, or None. Missing components are fine: they are created as
    folders. `tracked_only`: a tracked path the bundle lacks, whose last component the plan
    reads only when it is a regular file (a tracked symlink or submodule is skipped)."""
    parts = rel.split("/")
    full = len(os.fsencode(str(root))) + 1 + len(os.fsencode(rel))
    if full > MAX_PATH_BYTES:
        return f"would be {full} bytes long in {root} (limit {MAX_PATH_BYTES})"
    current = root
    for i, part in enumerate(parts):
        current = current / part
        shown = "/".join(parts[: i + 1])
        last = i == len(parts) - 1
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"cannot be checked at {shown!r}: {exc.strerror}"
        if last and tracked_only:
            return None
        if stat.S_ISLNK(st.st_mode):
            return (
                f"goes through {shown!r}, a symlink to {os.readlink(current)!r}: "
                "the write could land outside the repo"
            )
        if not last and not stat.S_ISDIR(st.st_mode):
            return f"needs {shown!r} to be a folder, but it is a file here"
        if last and stat.S_ISDIR(st.st_mode):
            return "is a folder here, a file in the bundle"
        if last and not stat.S_ISREG(st.st_mode):
            return "is a device or special file here"
    # No component is a symlink, so the path is inside by construction; say so explicitly.
    if not Path(os.path.realpath(current)).is_relative_to(root):
        return f"resolves outside {root}"
    return None


def check_destinations(
    root: Path,
    paths: list[str],
    refuse: Callable[[str], Exception],
    *,
    tracked_only: bool = False,
) -> None:
    """Raise refuse(message) for the first path that may not be written or read."""
    for rel in paths:
        problem = destination_problem(root, rel, tracked_only=tracked_only)
        if problem is not None:
            raise refuse(f"{rel!r} {problem}")
