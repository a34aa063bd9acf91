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


def describe_error(exc: BaseException, *, verbose: bool = False) -> tuple[str, int]:
    """The message and exit code for an error that reached the CLI. An AfasaOpsError is one
    line that says what to do; --verbose adds the chain of causes behind it. Anything else is
    a bug: one line naming it, and its traceback with --verbose."""
    if isinstance(exc, AfasaOpsError):
        # A configuration error may list several problems, one per line: each is an error.
        lines, code = [f"error: {line}" for line in str(exc).splitlines()], int(exc.exit_code)
        if verbose:
            lines += [f"  caused by {type(c).__name__}: {c}" for c in _causes(exc)]
        return "\n".join(lines), code
    lines = [f"error: unexpected {type(exc).__name__}: {exc}"]
    if verbose:
        import traceback

        lines.append("".join(traceback.format_exception(exc)).rstrip())
    else:
        lines.append("(a bug in afasa-ops: re-run with --verbose for the traceback)")
    return "\n".join(lines), int(ExitCode.FAILED)


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    while current is not None and len(out) < 10:
        out.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return out
