"""The journal: every run, append-only, under <repo>/.afasa-ops/runs/<run-id>/journal.jsonl.

One JSON event per line, written before and after each step, so a run killed with -9 leaves
a readable record that ends mid-step: `status` shows it as interrupted and the next run
resumes it. Everything is redacted on the way in.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from afasa_ops.errors import UsageError
from afasa_ops.redact import redactor
from afasa_ops.runbook.model import RunResult, StepResult

STATE_DIR = ".afasa-ops"
EXCLUDE_LINE = f"/{STATE_DIR}/"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def ensure_state_dir(repo: Path) -> Path:
    """Create .afasa-ops/ and keep it out of git via .git/info/exclude, not the user's .gitignore."""
    state = repo / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    git_dir = repo / ".git"
    if git_dir.is_dir():
        exclude = git_dir / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text() if exclude.exists() else ""
        if EXCLUDE_LINE not in text.splitlines():
            with exclude.open("a") as fh:
                # A newline only when the file does not end with one: no stray blank line.
                if text and not text.endswith("\n"):
                    fh.write("\n")
                fh.write(EXCLUDE_LINE + "\n")
    return state


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Journal:
    def __init__(self, repo: Path, run_id: str) -> None:
        self.repo = repo
        self.run_id = run_id
        self.dir = ensure_state_dir(repo) / "runs" / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "journal.jsonl"

    def write(self, event: str, **data: Any) -> None:
        record = redactor.redact_obj({"event": event, "ts": now_iso(), **data})
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()

    def keep_original(self, path: Path) -> Path | None:
        """Keep a copy of a file before the tool replaces it (the journal's rollback material)."""
        if not path.exists():
            return None
        rel = path.resolve().relative_to(self.repo.resolve()) if path.is_absolute() else path
        target = self.dir / "originals" / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        self.write("original_kept", path=str(rel), copy=str(target.relative_to(self.repo)))
        return target


class JournalReader:
    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.runs_dir = repo / STATE_DIR / "runs"

    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if (p / "journal.jsonl").exists())

    def latest(self, mode: str | None = None) -> RunResult | None:
        for run_id in reversed(self.run_ids()):
            run = self.read(run_id)
            if mode is None or run.mode == mode:
                return run
        return None

    def events(self, run_id: str) -> Iterator[dict[str, Any]]:
        path = self.runs_dir / run_id / "journal.jsonl"
        if not path.exists():
            raise UsageError(
                f"no run {run_id!r} in {self.runs_dir}", hint="see `afasa-ops status` for run ids"
            )
        with path.open() as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    # A line cut by a kill mid-write: everything before it still counts.
                    return

    def read(self, run_id: str) -> RunResult:
        run = RunResult(
            run_id=run_id,
            mode="run",
            phases=[],
            repo=str(self.repo),
            run_dir=str(self.runs_dir / run_id),
        )
        in_flight: str | None = None
        pid = 0
        by_id: dict[str, StepResult] = {}
        for event in self.events(run_id):
            kind = event.get("event")
            if kind == "run_started":
                run.mode = event.get("mode", "run")
                run.phases = event.get("phases", [])
                run.started_at = event.get("ts", "")
                run.resumed_from = event.get("resumed_from")
                pid = int(event.get("pid", 0))
            elif kind == "step_started":
                in_flight = event.get("step")
            elif kind == "step_finished":
                result = StepResult.from_json(event["result"])
                by_id[result.id] = result
                in_flight = None
            elif kind == "run_finished":
                run.status = event.get("status", "ok")
                run.finished_at = event.get("ts")
                run.incident = event.get("incident")
                run.message = event.get("message", "")
        run.steps = list(by_id.values())
        if run.finished_at is None:
            if pid and pid_alive(pid) and pid != os.getpid():
                run.status = "running"
            else:
                run.status = "interrupted"
                run.message = f"interrupted during step {in_flight}" if in_flight else "interrupted"
        return run
