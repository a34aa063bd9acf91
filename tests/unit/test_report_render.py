"""The report as the operators' deliverable: evidence per check, skipped apart, migrations by
file and checksum (never their SQL), and every run's three files beside its journal."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from afasa_ops.render.files import write_run_reports
from afasa_ops.render.markdown import render_markdown
from afasa_ops.runbook.journal import Journal, JournalReader
from afasa_ops.runbook.model import RunResult, Status, StepResult
from afasa_ops.steps.check import tally

EVIDENCE = [
    {
        "kind": "http",
        "method": "POST",
        "route": "/api/devices/{device_id}/disable",
        "status": 200,
        "message": "POST ... -> 200",
        "code": "check.disable",
    },
    {
        "kind": "sql",
        "role": "app",
        "rows": 1,
        "message": "SQL (as app): SELECT 1",
        "code": "check.row",
    },
    {
        "kind": "storage",
        "key": "reports/t/r.pdf",
        "size": 2048,
        "message": "object exists",
        "code": "check.object",
    },
]


def a_run() -> RunResult:
    check = StepResult(
        "phase4.checks.devices",
        "phase4",
        "Devices",
        "check.functional",
        Status.OK,
        summary=tally(EVIDENCE),
        verification=True,
        artifacts={"evidence": EVIDENCE, "touched": ["device 7 enabled again"]},
    )
    migrate = StepResult(
        "phase2.schema.migrate",
        "phase2",
        "Migrate",
        "schema.migrate",
        Status.CHANGED,
        summary="applied 0002_devices.sql",
        diff="CREATE TABLE devices (id uuid);\n",
        artifacts={"migrations": [{"file": "0002_devices.sql", "sha256": "ab" * 32}]},
    )
    push = StepResult(
        "phase0.git.push",
        "phase0",
        "Push",
        "git.push",
        Status.SKIPPED,
        summary="no remote to push to",
    )
    return RunResult("20261205-000000-abcd", "run", ["phase0"], [check, migrate, push], "ok")


def test_a_check_lists_each_request_probe_and_object() -> None:
    text = render_markdown(a_run())
    assert "`POST /api/devices/{device_id}/disable` → 200" in text
    assert "SQL as app → 1 row" in text
    assert "object `reports/t/r.pdf` stored, 2048 bytes" in text
    assert "touched: device 7 enabled again" in text
    assert "assertions" not in text
    assert tally(EVIDENCE) == "1 request, 1 SQL probe, 1 storage check"


def test_migrations_are_named_with_checksums_not_their_sql() -> None:
    text = render_markdown(a_run())
    assert f"| 0002_devices.sql | `{'ab' * 32}` |" in text
    assert "CREATE TABLE" not in text


def test_skipped_steps_are_listed_apart_with_their_reason() -> None:
    text = render_markdown(a_run())
    passed = text.split("## Passed")[1].split("## Skipped")[0]
    skipped = text.split("## Skipped")[1].split("## Failed")[0]
    assert "phase0.git.push" not in passed
    assert "- phase0.git.push: no remote to push to" in skipped


def test_every_run_writes_its_three_reports_beside_its_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "20261205-000000-abcd")
    run = a_run()
    run.run_dir = str(journal.dir)
    path = write_run_reports(run, journal.dir)
    assert path == journal.dir / "report.md"
    assert "## What was tested" in path.read_text()
    assert json.loads((journal.dir / "report.json").read_text())["run_id"] == run.run_id
    suites = ET.parse(journal.dir / "junit.xml").getroot()
    assert suites.get("tests") == "1"
    # The folder a reader finds again for the same run.
    journal.write("run_started", mode="run", phases=["phase0"])
    assert JournalReader(tmp_path).read(run.run_id).run_dir == str(journal.dir)


def test_an_adoption_lists_the_routes_it_moved_and_to_which_service() -> None:
    adopt = StepResult(
        "phase2.services.adopt",
        "phase2",
        "Adopt",
        "services.adopt",
        Status.CHANGED,
        summary="wrote docker-compose.afasa-ops.yml",
        artifacts={
            "moved_routes": [
                {
                    "router": "afasa-ops-devices",
                    "rule": "Method(`GET`) && Path(`/api/devices`)",
                    "service": "afasa-ops-api",
                }
            ]
        },
    )
    run = RunResult("20261205-000000-abcd", "run", ["phase2"], [adopt], "ok")
    changed = render_markdown(run).split("## What changed")[1].split("## What was tested")[0]
    assert (
        "| afasa-ops-devices | `Method(`GET`) && Path(`/api/devices`)` | afasa-ops-api |" in changed
    )
