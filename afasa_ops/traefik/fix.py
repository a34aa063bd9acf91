"""Turn an Analysis into file changes: the new text of each compose file and its diff."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from afasa_ops.compose.edit import edit_text
from afasa_ops.files import unified_diff
from afasa_ops.traefik.analysis import Analysis


@dataclass(frozen=True)
class FileChange:
    path: Path
    rel: str
    old: str
    new: str

    @property
    def diff(self) -> str:
        return unified_diff(self.old, self.new, self.rel)


def compose_changes(analysis: Analysis, repo: Path) -> list[FileChange]:
    """Every edit computed and verified before any file is written (all or nothing)."""
    changes = []
    for path, edits in analysis.edits.items():
        old = path.read_text()
        rel = _rel(path, repo)
        new = edit_text(old, edits, rel)
        if new != old:
            changes.append(FileChange(path, rel, old, new))
    return changes


def _rel(path: Path, repo: Path) -> str:
    try:
        return str(path.resolve().relative_to(repo.resolve()))
    except ValueError:
        return str(path)
