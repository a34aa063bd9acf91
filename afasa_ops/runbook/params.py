"""Runbook parameters the code needs by name (the pre-audit tag and fix branch templates):
they live in the runbook only, never as a copy in code."""

from __future__ import annotations

from afasa_ops.errors import RunbookError
from afasa_ops.runbook.context import Context


def runbook_parameter(ctx: Context, name: str) -> str:
    """The run's value of a runbook parameter (the Runner merges the runbook's over the
    operator's --param), else the configured runbook's, for callers outside a run."""
    value = ctx.params.get(name)
    if value is None:
        from afasa_ops.runbook.loader import load_runbook
        from afasa_ops.runbook.step import load_plugins

        load_plugins(ctx.settings.runbook.plugins)
        path = ctx.settings.runbook_path()
        value = load_runbook(path).parameters.get(name)
        if not value:
            raise RunbookError(
                f"{path}: the runbook has no `{name}` parameter",
                hint=f'add it under `parameters:` (e.g. {name}: "...-{{date}}")',
            )
    return str(value)
