"""The tool's vocabulary, shared by every layer: findings with a stable code and a severity,
and the record of a command a driver ran. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def error(cls, code: str, message: str, **data: Any) -> Finding:
        return cls(code, Severity.ERROR, message, data)

    @classmethod
    def warning(cls, code: str, message: str, **data: Any) -> Finding:
        return cls(code, Severity.WARNING, message, data)

    @classmethod
    def info(cls, code: str, message: str, **data: Any) -> Finding:
        return cls(code, Severity.INFO, message, data)


@dataclass
class CommandRecord:
    argv: list[str]
    exit_code: int | None
    duration_s: float
    stdout: str = ""
    stderr: str = ""
    cwd: str | None = None
