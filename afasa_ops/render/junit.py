"""JUnit XML of the verification steps, for CI systems.

Shaped as CI viewers read it (Jenkins, GitLab, junitparser): one testsuite per phase, one
testcase per verification step; counts and times on every testsuite and on testsuites (some
viewers read the totals from the root rather than counting cases); a failure or error with a
message and a type; a skipped step with its reason; the evidence in system-out."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from afasa_ops.redact import redact
from afasa_ops.runbook.model import RunResult, Status, StepResult

# A verification step a run never got to judge (plan) is not a pass: it counts as skipped.
_SKIPPED = (Status.SKIPPED, Status.PENDING)


def render_junit(run: RunResult) -> str:
    steps = [s for s in run.steps if s.verification]
    by_phase: dict[str, list[StepResult]] = {}
    for s in steps:
        by_phase.setdefault(s.phase, []).append(s)
    suites = ET.Element("testsuites", {"name": "afasa-ops", **_counts(steps)})
    for phase, phase_steps in by_phase.items():
        attrs = {"name": phase, **_counts(phase_steps), "timestamp": run.started_at}
        suite = ET.SubElement(suites, "testsuite", attrs)
        for s in phase_steps:
            _testcase(suite, phase, s)
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def _counts(steps: list[StepResult]) -> dict[str, str]:
    return {
        "tests": str(len(steps)),
        "failures": str(sum(1 for s in steps if s.status == Status.FAILED)),
        "errors": str(sum(1 for s in steps if s.status == Status.BLOCKED)),
        "skipped": str(sum(1 for s in steps if s.status in _SKIPPED)),
        "time": f"{sum(s.duration_s for s in steps):.3f}",
    }


def _testcase(suite: ET.Element, phase: str, s: StepResult) -> None:
    case = ET.SubElement(
        suite, "testcase", classname=f"afasa-ops.{phase}", name=s.id, time=f"{s.duration_s:.3f}"
    )
    message = redact(s.summary)
    if s.status == Status.FAILED:
        ET.SubElement(case, "failure", message=message, type=s.kind).text = _detail(s)
    elif s.status == Status.BLOCKED:
        ET.SubElement(case, "error", message=message, type=s.kind).text = _detail(s)
    elif s.status in _SKIPPED:
        # The reason as text too: some viewers show a skip's text, not its message.
        ET.SubElement(case, "skipped", message=message).text = message
    else:
        ET.SubElement(case, "system-out").text = _detail(s)


def _detail(s: StepResult) -> str:
    """What the step is (viewers show only its id), what it found and did: its findings (a
    problem its apply fixed as fixed; a check's requests, probes and cleanup), the commands
    with their output's tail. A check's `touched` list repeats its cleanup evidence: the
    markdown report has it."""
    # A step given no title is titled by its short id: no news there.
    lines = [s.title] if s.title and not s.id.endswith(s.title) else []
    lines.append(s.error or s.summary)
    lines += [f"[{s.finding_label(f)}] {f.code}: {f.message}" for f in s.findings]
    lines += [
        f"$ {' '.join(c.argv)} -> {c.exit_code}\n{c.stdout[-2000:]}{c.stderr[-2000:]}"
        for c in s.commands
    ]
    return redact("\n".join(lines))
