"""The public verbs. The CLI is a thin layer over these; they return result objects."""

from __future__ import annotations

from dataclasses import dataclass

from afasa_ops.config import SecretRef, Settings, section_classes
from afasa_ops.errors import AfasaOpsError
from afasa_ops.redact import redactor
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.journal import JournalReader
from afasa_ops.runbook.loader import Runbook
from afasa_ops.runbook.model import RunResult
from afasa_ops.runbook.runner import Reporter, Runner, Selection


def plan(
    runbook: Runbook, ctx: Context, selection: Selection, reporter: Reporter | None = None
) -> RunResult:
    """check() every selected step; changes nothing, records nothing."""
    return Runner(runbook, ctx, reporter).plan(selection)


def run(
    runbook: Runbook, ctx: Context, selection: Selection, reporter: Reporter | None = None
) -> RunResult:
    return Runner(runbook, ctx, reporter).run(selection)


@dataclass
class StatusResult:
    runs: list[RunResult]


def status(ctx: Context, limit: int = 10) -> StatusResult:
    reader = JournalReader(ctx.repo)
    ids = reader.run_ids()[-limit:]
    return StatusResult([reader.read(i) for i in reversed(ids)])


def load_run(ctx: Context, run_id: str | None) -> RunResult | None:
    reader = JournalReader(ctx.repo)
    return reader.read(run_id) if run_id else reader.latest()


def learn_secrets(settings: Settings) -> None:
    """Teach the redactor every secret the target holds before anything is printed or journaled:
    the config's references, and the compose project's secret-named variables."""
    for section_name in section_classes():
        section = getattr(settings, section_name)
        for key in type(section).model_fields:
            value = getattr(section, key)
            if isinstance(value, SecretRef):
                value.get()
    try:
        from afasa_ops.compose.project import load_project, secret_values

        project = load_project(settings.repo_path, settings.compose.files)
        redactor.add_many(secret_values(project))
    except (AfasaOpsError, OSError):
        pass  # no compose project yet: nothing to learn from it
