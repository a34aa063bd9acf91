"""Step kind `file.content`: a repo file holds exactly the given content."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from afasa_ops.files import atomic_write, unified_diff
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.files import replace_file
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.step import Params, Step, register


class FileContentParams(Params):
    path: str = Field(description="File inside the repo.")
    content: str


@register
class FileContent(Step[FileContentParams]):
    """A repo file holds exactly the given content; the original is restored on rollback."""

    kind = "file.content"
    Params = FileContentParams

    def _path(self, ctx: Context) -> Path:
        return ctx.repo / self.params.path

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        path = self._path(ctx)
        current = path.read_text() if path.exists() else ""
        if current == p.content:
            return Assessment.ok(f"{p.path} is as wanted")
        return Assessment.pending(
            f"{p.path} differs", diff=unified_diff(current, p.content, p.path)
        )

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        path = self._path(ctx)
        previous = path.read_text() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(ctx, path, p.content)
        return Outcome(True, f"wrote {p.path}", undo={"previous": previous})

    def rollback(self, ctx: Context, outcome: Outcome) -> None:
        previous = outcome.undo.get("previous")
        path = self._path(ctx)
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, previous)
