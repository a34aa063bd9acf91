"""Shared ending of plan, run and doctor: render the result, exit with the design's code."""

from __future__ import annotations

import typer

from afasa_ops.cli.application import Application
from afasa_ops.runbook.model import RunResult


def finish(app: Application, result: RunResult, as_json: bool) -> None:
    from afasa_ops.runbook.runner import exit_code_for

    report = None
    if result.mode == "run" and result.run_dir:
        from pathlib import Path

        from afasa_ops.render.files import write_run_reports

        # The deliverable of every run, beside its journal.
        report = write_run_reports(result, Path(result.run_dir))

    if as_json:
        from afasa_ops.render.jsonout import run_document

        app.print_json(run_document(result))
    else:
        from afasa_ops.render.terminal import render_run

        render_run(result, app.out)
    if report is not None:  # last, on stderr: where to read the whole story
        app.say(f"report: {report} (also report.json, junit.xml)")
    raise typer.Exit(int(exit_code_for(result)))
