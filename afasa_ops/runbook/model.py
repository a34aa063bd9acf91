"""Result objects shared by doctor, plan, run, status and report. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from afasa_ops.findings import CommandRecord, Finding, Severity


class State(StrEnum):
    """What check/verify says of the target."""

    OK = "ok"
    PENDING = "pending"
    BLOCKED = "blocked"


class Status(StrEnum):
    """What happened to a step in a run."""

    OK = "ok"
    PENDING = "pending"
    CHANGED = "changed"
    SKIPPED = "skipped"
    # plan: a verification-only step (a wait, a probe, a functional check) that a run will
    # run; it changes nothing, so it is not pending and plan's exit code ignores it.
    WILL_RUN = "will_run"
    FAILED = "failed"
    BLOCKED = "blocked"


@dataclass
class Assessment:
    """The answer of check() or verify()."""

    state: State
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)
    diff: str | None = None
    skip_reason: str | None = None

    @classmethod
    def ok(cls, summary: str = "", findings: list[Finding] | None = None) -> Assessment:
        return cls(State.OK, summary, findings or [])

    @classmethod
    def pending(
        cls, summary: str, findings: list[Finding] | None = None, diff: str | None = None
    ) -> Assessment:
        return cls(State.PENDING, summary, findings or [], diff)

    @classmethod
    def blocked(cls, summary: str, findings: list[Finding] | None = None) -> Assessment:
        return cls(State.BLOCKED, summary, findings or [])

    @classmethod
    def skipped(cls, reason: str) -> Assessment:
        """Nothing to do here by design (no remote to push to, no bundle configured)."""
        return cls(State.OK, reason, [], None, skip_reason=reason)


@dataclass
class Outcome:
    """The answer of apply()."""

    changed: bool
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)
    # Facts the report lists: packages installed or held, commits made.
    packages: list[str] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    # What rollback() needs to undo this apply (a file's previous text...): kept in memory
    # for the run, never journaled or reported.
    undo: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class StepResult:
    id: str
    phase: str
    title: str
    kind: str
    status: Status
    summary: str = ""
    findings: list[Finding] = field(default_factory=list)
    diff: str | None = None
    commands: list[CommandRecord] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None
    packages: list[str] = field(default_factory=list)
    verification: bool = False
    artifacts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def finding_label(self, finding: Finding) -> str:
        """A problem the step's apply changed away is shown as fixed, not as an error."""
        if self.status == Status.CHANGED and finding.severity != Severity.INFO:
            return "fixed"
        return str(finding.severity)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepResult:
        data = dict(data)
        data["status"] = Status(data["status"])
        data["findings"] = [
            Finding(f["code"], Severity(f["severity"]), f["message"], f.get("data", {}))
            for f in data.get("findings", [])
        ]
        data["commands"] = [CommandRecord(**c) for c in data.get("commands", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunResult:
    run_id: str
    mode: str  # plan | run | doctor
    phases: list[str]
    steps: list[StepResult] = field(default_factory=list)
    status: str = "running"  # ok | pending | failed | blocked | interrupted | running
    started_at: str = ""
    finished_at: str | None = None
    incident: str | None = None
    resumed_from: str | None = None
    repo: str = ""
    message: str = ""
    # The run's folder (journal, reports); empty for runs that keep no journal.
    run_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [s.to_json() for s in self.steps]
        return data
