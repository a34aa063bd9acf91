"""A run's deliverable on disk: report.md, report.json and junit.xml beside its journal."""

from __future__ import annotations

import json
from pathlib import Path

from afasa_ops.files import atomic_write
from afasa_ops.redact import redactor
from afasa_ops.render.jsonout import run_document
from afasa_ops.render.junit import render_junit
from afasa_ops.render.markdown import render_markdown
from afasa_ops.runbook.model import RunResult

REPORT_FILES = ("report.md", "report.json", "junit.xml")


def write_run_reports(run: RunResult, folder: Path) -> Path:
    """Write the three reports of a run into its folder; returns the markdown one."""
    document = redactor.redact_obj(run_document(run))
    texts = {
        "report.md": render_markdown(run),
        "report.json": json.dumps(document, indent=2, default=str) + "\n",
        "junit.xml": render_junit(run),
    }
    for name, text in texts.items():
        atomic_write(folder / name, text)
    return folder / "report.md"
