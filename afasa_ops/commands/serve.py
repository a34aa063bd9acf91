"""`afasa-ops serve`: the reference HTTP service (api/serve.py builds and runs it)."""

from __future__ import annotations

from collections.abc import Callable

from afasa_ops.config import Settings


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
    say: Callable[[str], None] = print,
) -> None:
    """Runs until stopped; refuses to start on a bad [api] or [database] configuration."""
    from afasa_ops.api.serve import serve as run_service

    run_service(settings, host=host, port=port, log_level=log_level, say=say)
