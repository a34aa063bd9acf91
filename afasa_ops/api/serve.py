"""`afasa-ops serve`: build the runtime (refusing bad auth config), then run uvicorn."""

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
    import uvicorn

    from afasa_ops.api.app import create_app
    from afasa_ops.api.protocol import guarded_protocol
    from afasa_ops.api.runtime import build_runtime

    runtime = build_runtime(settings)
    bind_host = host or settings.api.host
    bind_port = port if port is not None else settings.api.port
    mode = "HS256 development tokens" if runtime.verifier.dev_secret else "OIDC RS256 tokens"
    say(f"afasa-ops serve on http://{bind_host}:{bind_port} ({mode})")
    api = settings.api
    uvicorn.run(
        create_app(runtime),
        host=bind_host,
        port=bind_port,
        log_level=log_level,
        access_log=False,
        proxy_headers=True,
        # h11 with the header-size and header-deadline guards (afasa_ops/api/protocol.py);
        # h11's own buffer limit sits above ours, so ours answers first (431, not 400).
        http=guarded_protocol(api.max_header_bytes, api.header_timeout_s),
        h11_max_incomplete_event_size=api.max_header_bytes * 2,
        timeout_keep_alive=max(1, round(api.keep_alive_s)),
    )
