"""`afasa-ops worker report|commands|sync`: a platform worker run to completion (workers/main.py
builds it from Settings). Each returns the process exit code; sync also its last pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

from afasa_ops.extras import require

if TYPE_CHECKING:
    from afasa_ops.config import Settings
    from afasa_ops.workers.sync import PassResult


def report(settings: Settings, *, concurrency: int | None = None, port: int | None = None) -> int:
    require("service", "worker report")
    from afasa_ops.workers.main import run_report

    return run_report(settings, concurrency=concurrency, port=port)


def commands(settings: Settings, *, concurrency: int | None = None, port: int | None = None) -> int:
    require("service", "worker commands")
    from afasa_ops.workers.main import run_commands

    return run_commands(settings, concurrency=concurrency, port=port)


def sync(
    settings: Settings, *, once: bool = False, port: int | None = None
) -> tuple[int, PassResult | None]:
    require("service", "worker sync")
    from afasa_ops.workers.main import run_sync

    return run_sync(settings, once=once, port=port)
