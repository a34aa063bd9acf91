"""`afasa-ops serve`: the reference HTTP service, run until stopped. api/serve.py builds the
runtime (refusing a bad [api] or [database] configuration) and runs uvicorn; this module is
its place among the commands, and checks first that `afasa-ops[service]` is installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from afasa_ops.extras import require

if TYPE_CHECKING:
    from afasa_ops.config import Settings


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
    say: Callable[[str], None] = print,
) -> None:
    require("service", "serve")
    from afasa_ops.api.serve import serve as run_server

    run_server(settings, host=host, port=port, log_level=log_level, say=say)
