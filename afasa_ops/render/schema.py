"""`afasa-ops schema ...` results as text: data on stdout, findings and verdicts on stderr."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from afasa_ops.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from afasa_ops.findings import Finding
    from afasa_ops.schema.service import StatusReport

Say = Callable[[str], None]


def render_findings(findings: list[Finding], say: Say) -> None:
    for f in findings:
        say(f"  {f.severity} {f.code}: {f.message}")


def render_status(report: StatusReport, out: Console, say: Say) -> None:
    out.print(f"database {report.database}: {report.state}", markup=False)
    for row in report.applied:
        out.print(
            f"  applied {row['version']:04d}_{row['name']}  {row['applied_at']}  "
            f"by {row['applied_by']}  {row['duration_ms']} ms  sha256 {row['checksum'][:12]}",
            markup=False,
        )
        adopted = row.get("adopted") or []
        if adopted:
            out.print(f"    adopted {len(adopted)} difference(s) from the baseline:", markup=False)
        for drift in adopted:
            out.print(f"      {drift['code']}: {drift['message']}", markup=False)
    for name in report.pending:
        out.print(f"  pending {name}", markup=False)
    render_findings(report.findings, say)
    if report.blocked:
        say(f"blocked: {report.blocked}")


def render_migrate(result: Any, say: Say) -> None:
    if result.applied:
        say(f"applied {', '.join(result.applied)}")
    else:
        say("nothing to apply: the database is up to date")


def render_verify(report: StatusReport, say: Say) -> None:
    render_findings(report.findings, say)
    if report.blocked:
        say(f"blocked: {report.blocked}")
    elif report.pending:
        say(f"pending: {', '.join(report.pending)}")
    elif report.exit_code == ExitCode.OK:
        say(f"database {report.database}: every migration applied and verified")


def render_baseline(report: Any, check: bool, say: Say) -> None:
    render_findings(report.findings, say)
    if report.recorded:
        adopted = f", adopting {len(report.drift)} difference(s)" if report.drift else ""
        say(f"recorded {report.migration.path.name} as the baseline{adopted}")
    elif check and report.blocking:
        say(f"blocked: {report.blocked_reason()}")
    elif check and report.drift:
        say(
            f"nothing the later migrations need is missing: baseline would adopt "
            f"{len(report.drift)} difference(s) from {report.migration.path.name}"
        )
    elif check:
        say("the database matches the baseline")
    else:
        say("the baseline was recorded earlier: nothing to do")
