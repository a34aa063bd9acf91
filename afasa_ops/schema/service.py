"""The schema verbs as functions: status, sql, migrate, verify, baseline. The CLI renders them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from afasa_ops.errors import ExitCode
from afasa_ops.findings import Finding, Severity
from afasa_ops.infra.postgres import Postgres
from afasa_ops.schema.settings import SchemaSettings


@contextmanager
def admin(cfg: SchemaSettings) -> Iterator[Postgres]:
    pg = Postgres(cfg.admin_dsn, cfg.timeouts)
    try:
        yield pg
    finally:
        pg.close()


@dataclass
class StatusReport:
    database: str
    state: str
    applied: list[dict[str, Any]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    blocked: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        if self.blocked:
            return ExitCode.BLOCKED
        if any(f.severity == Severity.ERROR for f in self.findings):
            return ExitCode.FAILED
        return ExitCode.PENDING if self.pending else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "state": self.state,
            "applied": self.applied,
            "pending": self.pending,
            "blocked": self.blocked,
            "findings": [
                {"code": f.code, "severity": str(f.severity), "message": f.message}
                for f in self.findings
            ],
        }


def status(cfg: SchemaSettings) -> StatusReport:
    from afasa_ops.schema.migrator import make_plan

    with admin(cfg) as pg:
        plan = make_plan(pg, cfg)
    insp = plan.inspection
    return StatusReport(
        database=insp.database,
        state=insp.state,
        applied=[
            {
                "version": r.version,
                "name": r.name,
                "checksum": r.checksum,
                "applied_at": r.applied_at.isoformat(),
                "applied_by": r.applied_by,
                "duration_ms": r.duration_ms,
                "adopted": r.adopted,
            }
            for r in insp.applied.values()
        ],
        pending=[m.path.name for m in plan.pending],
        findings=[f for f in plan.findings() if f.code != "db.migration_pending"],
        blocked=plan.blocked_reason,
    )


def sql(cfg: SchemaSettings) -> str:
    """What migrate would run, changing nothing (reads the catalog only)."""
    from afasa_ops.schema.migrator import make_plan, render
    from afasa_ops.schema.roles import role_statements

    with admin(cfg) as pg:
        plan = make_plan(pg, cfg)
    text = render(plan, role_statements(cfg.app_role, cfg.app_password, render=True))
    reason = plan.blocked_reason
    if reason:
        text = f"-- migrate would stop here: {reason}\n" + text
    return text


def migrate(cfg: SchemaSettings) -> Any:
    from afasa_ops.schema import migrator

    with admin(cfg) as pg:
        return migrator.migrate(pg, cfg)


def verify(cfg: SchemaSettings) -> StatusReport:
    """Status plus every applied migration's verify query (the CI gate)."""
    from afasa_ops.schema import migrator

    report = status(cfg)
    with admin(cfg) as pg:
        report.findings = [f for f in migrator.verify(pg, cfg) if f.code != "db.migration_pending"]
    return report


def baseline(cfg: SchemaSettings, *, record: bool) -> Any:
    from afasa_ops.schema import baseline as bl

    with admin(cfg) as pg:
        return bl.record(pg, cfg) if record else bl.check(pg, cfg)
