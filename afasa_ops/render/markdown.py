"""The operators' deliverable: what changed, what was tested, what passed and failed."""

from __future__ import annotations

from afasa_ops.findings import CommandRecord
from afasa_ops.redact import redact
from afasa_ops.runbook.model import RunResult, Status

EXCERPT_LINES = 40


def _excerpt(text: str) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines[-EXCERPT_LINES:])


def _command_line(c: CommandRecord) -> str:
    return f"- `{' '.join(c.argv)}` → exit {c.exit_code} in {c.duration_s:.2f}s"


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
        out.append(f"### {s.id}: {s.title}")
        out.append("")
        out.append(s.summary)
        if s.diff:
            out += ["", "```diff", s.diff.rstrip(), "```"]
        out.append("")

    out += ["", "## What was tested", ""]
    tested = [s for s in run.steps if s.commands]
    if not tested:
        out.append("No external commands were run.")
    for s in tested:
        out.append(f"**{s.id}**")
        out.extend(_command_line(c) for c in s.commands)
        out.append("")

    passed = [s for s in run.steps if s.status in (Status.OK, Status.CHANGED, Status.SKIPPED)]
    failed = [s for s in run.steps if s.status in (Status.FAILED, Status.BLOCKED)]
    out += ["", "## Passed", ""]
    out.extend(f"- {s.id} ({s.status.value})" for s in passed)
    if not passed:
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
