"""JUnit XML of the verification steps, for CI systems."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from afasa_ops.redact import redact
from afasa_ops.runbook.model import RunResult, Status


def render_junit(run: RunResult) -> str:
    steps = [s for s in run.steps if s.verification]
    suites = ET.Element("testsuites", name="afasa-ops", tests=str(len(steps)))
    by_phase: dict[str, list] = {}  # type: ignore[type-arg]
    for s in steps:
        by_phase.setdefault(s.phase, []).append(s)
    for phase, phase_steps in by_phase.items():
        failures = sum(1 for s in phase_steps if s.status == Status.FAILED)
        errors = sum(1 for s in phase_steps if s.status == Status.BLOCKED)
        skipped = sum(1 for s in phase_steps if s.status in (Status.SKIPPED, Status.PENDING))
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=phase,
            tests=str(len(phase_steps)),
            failures=str(failures),
            errors=str(errors),
            skipped=str(skipped),
            timestamp=run.started_at,
        )
        for s in phase_steps:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"afasa-ops.{phase}",
                name=s.id,
                time=f"{s.duration_s:.3f}",
            )
            detail = redact(
                "\n".join(
                    [s.error or s.summary]
                    + [f"[{f.severity}] {f.code}: {f.message}" for f in s.findings]
                    + [
                        f"$ {' '.join(c.argv)} -> {c.exit_code}\n{c.stdout[-2000:]}{c.stderr[-2000:]}"
                        for c in s.commands
                    ]
                )
            )
            if s.status == Status.FAILED:
                ET.SubElement(case, "failure", message=redact(s.summary)).text = detail
            elif s.status == Status.BLOCKED:
                ET.SubElement(case, "error", message=redact(s.summary)).text = detail
            elif s.status in (Status.SKIPPED, Status.PENDING):
                ET.SubElement(case, "skipped", message=redact(s.summary))
            else:
                ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
