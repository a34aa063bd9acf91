"""One exception base, subclasses that carry data, one place that maps them to exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    PENDING = 3
    BLOCKED = 4


class AfasaOpsError(Exception):
    """An error meant for the user: one line that says what is wrong and what to do."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AfasaOpsError):
    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A configuration file or AFASA_OPS_* variable is wrong."""


class RunbookError(UsageError):
    """A runbook file is malformed or names an unknown step kind or parameter."""


class BlockedError(AfasaOpsError):
    """A precondition outside the tool stops the work (a lock held, an engine missing...)."""

    exit_code = ExitCode.BLOCKED


class LockHeldError(BlockedError):
    def __init__(self, lock_path: str, holder: dict[str, object]) -> None:
        pid = holder.get("pid", "?")
        started = holder.get("started_at", "?")
        run_id = holder.get("run_id", "?")
        super().__init__(
            f"another afasa-ops run holds {lock_path}: pid {pid}, started {started} (run {run_id})",
            hint="wait for it to finish, or stop that process",
        )
        self.holder = holder


class DriverError(AfasaOpsError):
    """An external system (git, docker, postgres, nats, http) refused or failed."""
