"""Step kinds for engine tests, loaded through `[runbook] plugins = ["tests.support.kinds"]`.

They act on plain files in the target repo so every effect can be observed from outside.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from afasa_ops.files import unified_diff
from afasa_ops.findings import Finding
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.model import Assessment, Outcome
from afasa_ops.runbook.step import Params, ReadOnlyStep, Step, register


def _count(ctx: Context, name: str) -> None:
    """Append to applies.log so tests can see which applies really ran."""
    with (ctx.repo / "applies.log").open("a") as fh:
        fh.write(name + "\n")


class MarkerParams(Params):
    path: str
    content: str = "done\n"
    slow_s: float = 0.0


@register
class Marker(Step[MarkerParams]):
    """A file with wanted content; apply counts itself; rollback removes the file."""

    kind = "test.marker"
    Params = MarkerParams
    verification = True

    def check(self, ctx: Context) -> Assessment:
        p = self.params
        path = ctx.repo / p.path
        current = path.read_text() if path.exists() else ""
        if current == p.content:
            return Assessment.ok(f"{p.path} present")
        return Assessment.pending(
            f"{p.path} missing",
            [Finding.warning("test.marker_missing", f"{p.path} is missing")],
            unified_diff(current, p.content, p.path),
        )

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        _count(ctx, self.id)
        started = ctx.repo / "slow-started"
        if p.slow_s and not started.exists():
            # Slow only the first time, so a resumed run finishes quickly.
            started.write_text("1")
            time.sleep(p.slow_s)
        (ctx.repo / p.path).write_text(p.content)
        return Outcome(True, f"wrote {p.path}")

    def rollback(self, ctx: Context, outcome: Outcome) -> None:
        p = self.params
        (ctx.repo / p.path).unlink(missing_ok=True)
        _count(ctx, f"rollback {self.id}")


class FailingParams(Params):
    message: str = "boom"
    argv: list[str] | None = None
    services: list[str] = []


@register
class Failing(Step[FailingParams]):
    """Always pending; apply runs a command (which may print secrets) and then fails."""

    kind = "test.failing"
    Params = FailingParams
    verification = True

    def check(self, ctx: Context) -> Assessment:
        return Assessment.pending("will fail")

    def apply(self, ctx: Context) -> Outcome:
        p = self.params
        _count(ctx, self.id)
        if p.argv:
            ctx.shell.run(p.argv)
        raise RuntimeError(p.message)


@register
class Blocked(Step[Params]):
    kind = "test.blocked"

    def check(self, ctx: Context) -> Assessment:
        return Assessment.blocked("a precondition fails", [Finding.error("test.blocked", "no")])

    def apply(self, ctx: Context) -> Outcome:  # pragma: no cover - never reached
        raise AssertionError("apply on a blocked step")


@register
class Destructive(Marker):
    kind = "test.destructive"
    needs_confirmation = True


def main() -> None:  # pragma: no cover - used by a subprocess test
    print(Path(sys.argv[1]).read_text())


@register
class Probe(ReadOnlyStep[Params]):
    """A verification-only step whose check cannot judge before it runs (like phase 4's)."""

    kind = "test.probe"
    verification = True

    def check(self, ctx: Context) -> Assessment:
        return Assessment.pending("will probe")

    def verify(self, ctx: Context, outcome: Outcome) -> Assessment:
        return Assessment.ok("probed")
