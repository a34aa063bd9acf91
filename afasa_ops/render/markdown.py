"""The operators' deliverable: what changed, what was tested, what passed and failed."""

from __future__ import annotations

from typing import Any

from afasa_ops.findings import CommandRecord
from afasa_ops.redact import redact
from afasa_ops.runbook.model import RunResult, Status, StepResult

EXCERPT_LINES = 40


def _excerpt(text: str) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[-EXCERPT_LINES:])


def _command_line(c: CommandRecord) -> str:
    return f"- `{' '.join(c.argv)}` → exit {c.exit_code} in {c.duration_s:.2f}s"


def evidence_line(record: dict[str, Any]) -> str:
    """One probe of a functional check as the report lists it."""
    kind = record.get("kind")
    if kind == "http":
        return f"`{record['method']} {record['route']}` → {record['status']}"
    if kind == "sql":
        rows = record["rows"]
        return (
            f"SQL as {record['role']} → {rows} row{'s' if rows != 1 else ''}: {record['message']}"
        )
    if kind == "storage" and record.get("deleted"):
        return f"object `{record['key']}` deleted"
    if kind == "storage":
        return f"object `{record['key']}` stored, {record['size']} bytes"
    return str(record.get("message", ""))


def _tested(step: StepResult) -> list[str]:
    out = [_command_line(c) for c in step.commands]
    out += [f"- {evidence_line(r)}" for r in step.artifacts.get("evidence", [])]
    out += [f"- touched: {t}" for t in step.artifacts.get("touched", [])]
    return out


def _changed(step: StepResult) -> list[str]:
    out = [f"### {step.id}: {step.title}", "", step.summary]
    migrations = step.artifacts.get("migrations")
    if migrations:
        # The SQL stays in the journal and the incident bundle; the report names the files.
        out += ["", "| migration | sha256 |", "| --- | --- |"]
        out += [f"| {m['file']} | `{m['sha256']}` |" for m in migrations]
    elif step.diff:
        out += ["", "```diff", step.diff.rstrip(), "```"]
    moved = step.artifacts.get("moved_routes")
    if moved:
        out += ["", "Routes moved (Traefik rule -> service):", ""]
        out += ["| router | rule | now served by |", "| --- | --- | --- |"]
        out += [f"| {m['router']} | `{m['rule']}` | {m['service']} |" for m in moved]
    out.append("")
    return out


def render_markdown(run: RunResult) -> str:
    out: list[str] = [
        f"# afasa-ops report: run {run.run_id}",
        "",
        f"- repository: `{run.repo}`",
        f"- mode: {run.mode}; phases: {', '.join(run.phases) or '-'}",
        f"- started: {run.started_at}; finished: {run.finished_at or '-'}",
        f"- result: **{run.status}**" + (f" ({run.message})" if run.message else ""),
    ]
    if run.resumed_from:
        out.append(f"- resumed from run {run.resumed_from}")
    if run.incident:
        out.append(f"- incident bundle: `{run.incident}`")
    out += ["", "## Steps", "", "| step | status | summary |", "| --- | --- | --- |"]
    for s in run.steps:
        summary = s.summary.replace("|", "\\|").replace("\n", " ")
        out.append(f"| {s.id} | {s.status.value} | {summary} |")

    changed = [s for s in run.steps if s.status == Status.CHANGED]
    out += ["", "## What changed", ""]
    if not changed:
        out.append("Nothing changed." if run.mode == "run" else "Nothing applied (plan only).")
    for s in changed:
        out += _changed(s)

    out += ["", "## What was tested", ""]
    tested = [(s, lines) for s in run.steps if (lines := _tested(s))]
    if not tested:
        out.append("No external commands or probes were run.")
    for s, lines in tested:
        out.append(f"**{s.id}** ({s.status.value})")
        out.extend(lines)
        out.append("")

    passed = [s for s in run.steps if s.status in (Status.OK, Status.CHANGED)]
    skipped = [s for s in run.steps if s.status == Status.SKIPPED]
    failed = [s for s in run.steps if s.status in (Status.FAILED, Status.BLOCKED)]
    out += ["", "## Passed", ""]
    out.extend(f"- {s.id} ({s.status.value})" for s in passed)
    if not passed:
        out.append("None.")
    out += ["", "## Skipped", ""]
    out.extend(f"- {s.id}: {s.summary}" for s in skipped)
    if not skipped:
        out.append("None.")
    out += ["", "## Failed", ""]
    if not failed:
        out.append("None.")
    for s in failed:
        out.append(f"### {s.id} ({s.status.value})")
        out.append("")
        out.append(s.error or s.summary)
        for f in s.findings:
            out.append(f"- [{f.severity}] `{f.code}`: {f.message}")
        for c in s.commands:
            if c.exit_code != 0:
                out += ["", _command_line(c), "", "```", _excerpt(c.stderr or c.stdout), "```"]
        out.append("")

    packages = [p for s in run.steps for p in s.packages]
    out += ["", "## Packages installed or held", ""]
    out.extend(f"- {p}" for p in packages)
    if not packages:
        out.append("None.")
    return redact("\n".join(out).rstrip() + "\n")
