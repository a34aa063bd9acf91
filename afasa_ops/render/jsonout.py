"""The JSON documents of doctor, plan, run and status (schema in docs/json-output.md)."""

from __future__ import annotations

from typing import Any

from afasa_ops.runbook.model import RunResult

SCHEMA_VERSION = 1


def run_document(result: RunResult) -> dict[str, Any]:
    doc = result.to_json()
    doc["schema_version"] = SCHEMA_VERSION
    for step in doc["steps"]:
        for command in step["commands"]:
            # Full outputs live in the journal and the report; the document stays small.
            command["stdout"] = command["stdout"][-2000:]
            command["stderr"] = command["stderr"][-2000:]
    return doc


def status_document(runs: list[RunResult]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "runs": [
            {
                "run_id": r.run_id,
                "mode": r.mode,
                "status": r.status,
                "phases": r.phases,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "resumed_from": r.resumed_from,
                "incident": r.incident,
                "message": r.message,
                "steps": [{"id": s.id, "status": s.status.value} for s in r.steps],
            }
            for r in runs
        ],
    }
