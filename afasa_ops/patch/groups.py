"""Commit groups: path globs mapped to conventional commit messages, first match wins. The
groups and their messages are the runbook's (the patch.apply step's params)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class GroupSpec(BaseModel):
    """One commit group as written in a runbook: globs and the commit message."""

    model_config = ConfigDict(extra="forbid")
    globs: list[str] = Field(min_length=1, description="Repo-relative path globs (** = any depth).")
    message: str = Field(min_length=1, description="The commit message for these files.")


def glob_match(path: str, pattern: str) -> bool:
    """Match per path segment: `*` and `?` stay within a segment, `**` spans any depth."""
    return _match(path.split("/"), [p for p in pattern.strip("/").split("/") if p])


def _match(parts: list[str], pats: list[str]) -> bool:
    if not pats:
        return not parts
    head, rest = pats[0], pats[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _match(parts[1:], rest)


@dataclass(frozen=True)
class Grouper:
    groups: list[GroupSpec]
    catch_all: str

    def messages(self) -> list[str]:
        """Group messages in commit order: the runbook's order, the catch-all last."""
        seen: list[str] = []
        for g in self.groups:
            if g.message not in seen:
                seen.append(g.message)
        if self.catch_all not in seen:
            seen.append(self.catch_all)
        return seen

    def group_of(self, path: str) -> str:
        for g in self.groups:
            if any(glob_match(path, pat) for pat in g.globs):
                return g.message
        return self.catch_all
