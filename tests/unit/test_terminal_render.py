"""The console's run summary: each finding once, and what a run fixed shown as fixed."""

from __future__ import annotations

from rich.console import Console

from afasa_ops.findings import Finding
from afasa_ops.render.terminal import render_run
from afasa_ops.runbook.model import RunResult, Status, StepResult


def test_findings_fixed_by_the_run_show_as_fixed_and_once() -> None:
    unpinned = Finding.error("traefik.unpinned", "traefik:v3.6.0 cannot talk to Docker 29")
    steps = [
        StepResult(
            "phase1.traefik.pin",
            "phase1",
            "Pin",
            "traefik.compose",
            Status.CHANGED,
            findings=[unpinned],
        ),
        StepResult(
            "phase1.traefik.recreate",
            "phase1",
            "Recreate",
            "traefik.recreate",
            Status.CHANGED,
            findings=[unpinned],
        ),
        StepResult(
            "phase1.traefik.routing",
            "phase1",
            "Routing",
            "traefik.routing",
            Status.OK,
            findings=[Finding.info("traefik.routers", "api@docker")],
        ),
    ]
    console = Console(record=True, width=200)
    render_run(RunResult("r1", "run", ["phase1"], steps, "ok"), console)
    text = console.export_text()
    assert text.count("traefik.unpinned") == 1
    assert "[fixed] traefik.unpinned" in text
    assert "[error]" not in text
    assert "[info] traefik.routers: api@docker" in text
