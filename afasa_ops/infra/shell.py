"""The subprocess driver: every command the tool runs is recorded for the journal, redacted."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from afasa_ops.errors import DriverError
from afasa_ops.findings import CommandRecord
from afasa_ops.redact import redactor

# The journal keeps the tail of long outputs: logs can be megabytes, the end says why.
MAX_KEPT_OUTPUT = 64 * 1024


def _tail(text: str) -> str:
    if len(text) <= MAX_KEPT_OUTPUT:
        return text
    return "[... truncated ...]\n" + text[-MAX_KEPT_OUTPUT:]


@dataclass
class Shell:
    """Runs commands and appends a redacted CommandRecord for each to `records`."""

    records: list[CommandRecord] = field(default_factory=list)
    default_timeout_s: float = 600.0

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        check: bool = False,
        input_text: str | None = None,
    ) -> CommandRecord:
        full_env = {**os.environ, **(env or {})}
        started = time.monotonic()
        try:
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                env=full_env,
                input=input_text,
                capture_output=True,
                text=True,
                timeout=timeout_s or self.default_timeout_s,
                check=False,
            )
            code: int | None = proc.returncode
            out, err = proc.stdout, proc.stderr
        except FileNotFoundError:
            code, out, err = 127, "", f"{argv[0]}: command not found"
        except subprocess.TimeoutExpired as exc:
            code = None
            out = _decode(exc.stdout)
            err = _decode(exc.stderr) + f"\n[timed out after {exc.timeout:.0f}s]"
        record = CommandRecord(
            argv=[redactor.redact(a) for a in argv],
            exit_code=code,
            duration_s=round(time.monotonic() - started, 3),
            stdout=_tail(redactor.redact(out)),
            stderr=_tail(redactor.redact(err)),
            cwd=str(cwd) if cwd else None,
        )
        self.records.append(record)
        if check and code != 0:
            raise DriverError(
                f"`{' '.join(record.argv)}` exited {code}: {last_line(record.stderr or record.stdout)}"
            )
        return record

    def take(self) -> list[CommandRecord]:
        """Hand over what was recorded since the last take (one step's commands)."""
        taken, self.records = self.records, []
        return taken


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
