"""The Application object every command receives: consoles, config, options, one abort().

Data goes to stdout, messages to stderr. Nothing heavy is imported here: `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from afasa_ops.config import Settings
    from afasa_ops.runbook.context import Context, Options
    from afasa_ops.runbook.loader import Runbook
    from afasa_ops.runbook.runner import Reporter


@dataclass
class Application:
    config_path: Path | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _err: Console | None = field(default=None, repr=False)
    _out: Console | None = field(default=None, repr=False)

    @property
    def color(self) -> bool:
        return "NO_COLOR" not in os.environ and sys.stdout.isatty()

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty() and sys.stderr.isatty() and os.environ.get("CI") != "true"

    @property
    def err(self) -> Console:
        if self._err is None:
            from rich.console import Console

            plain = "NO_COLOR" in os.environ or not sys.stderr.isatty()
            self._err = Console(stderr=True, no_color=plain, highlight=False, soft_wrap=plain)
        return self._err

    @property
    def out(self) -> Console:
        if self._out is None:
            from rich.console import Console

            plain = not self.color
            self._out = Console(no_color=plain, highlight=False, soft_wrap=plain)
        return self._out

    def settings(self) -> Settings:
        if self._settings is None:
            from afasa_ops.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    def runbook(self) -> Runbook:
        from afasa_ops.runbook.loader import load_runbook
        from afasa_ops.runbook.step import load_plugins

        settings = self.settings()
        load_plugins(settings.runbook.plugins)
        return load_runbook(settings.runbook_path())

    def context(self, options: Options | None = None) -> Context:
        from afasa_ops.commands.context import learn_secrets
        from afasa_ops.runbook.context import Context, Options

        learn_secrets(self.settings())
        opts = options or Options()
        opts.interactive = self.interactive
        return Context(
            settings=self.settings(),
            options=opts,
            confirm=self.confirm,
            say=self.say,
        )

    def reporter(self, verb: str, as_json: bool) -> Reporter:
        """Live progress on stderr (quiet when the caller wants JSON on a non-terminal)."""
        from afasa_ops.runbook.runner import SilentReporter

        if as_json and not _may_be_terminal(sys.stderr):
            return SilentReporter()  # what rich would decide, without importing it
        from afasa_ops.render.terminal import ProgressReporter

        if as_json and not self.err.is_terminal:
            return SilentReporter()
        return ProgressReporter(self.err, verb)

    def say(self, message: str) -> None:
        from afasa_ops.redact import redact

        if self._err is None and not _may_be_terminal(sys.stderr):
            # A log or a pipe gets the line as it is: no rich import, no emoji codes replaced.
            sys.stderr.write(redact(message) + "\n")
            return
        self.err.print(redact(message), markup=False)

    def confirm(self, question: str) -> bool:
        from afasa_ops.redact import redact

        return typer.confirm(redact(question), default=False, err=True)

    def emit(
        self,
        as_json: bool,
        document: Callable[[], Any],
        render: Callable[[], None],
        code: int | None = None,
    ) -> None:
        """A command's result: one JSON document on stdout (--json) or the renderer's text;
        then the exit code, when the command has one to give."""
        if as_json:
            self.print_json(document())
        else:
            render()
        if code is not None:
            raise typer.Exit(int(code))

    def print_json(self, data: Any) -> None:
        from afasa_ops.redact import redactor

        sys.stdout.write(json.dumps(redactor.redact_obj(data), indent=2, default=str) + "\n")


def _may_be_terminal(stream: Any) -> bool:
    """False only where rich's Console.is_terminal is surely False too: no TTY_COMPATIBLE or
    FORCE_COLOR to override it, and a stream that is not a tty."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def app_of(ctx: typer.Context) -> Application:
    obj = ctx.find_root().obj
    if not isinstance(obj, Application):
        obj = Application()
        ctx.find_root().obj = obj
    return obj
