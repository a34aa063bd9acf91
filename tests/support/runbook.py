"""Values the shipped runbook gives (commit messages...): tests read them from there, as the
tool does, instead of keeping a copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afasa_ops.runbook.loader import load_runbook

SHIPPED = (
    Path(__file__).resolve().parents[2] / "afasa_ops" / "data" / "runbooks" / "afasa-repair.yaml"
)


def step_params(step_id: str) -> Any:
    return load_runbook(SHIPPED).find_step(step_id).params


INIT_COMMIT_MESSAGE: str = step_params("phase2.schema.init_sql").message
