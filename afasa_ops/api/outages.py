"""The API during a database outage: 503 with Retry-After and one log line, never a traceback
per request, and never a request that waits for the whole outage.

- A database error that says the server is down, restarting, out of connections or too slow
  (statement/lock timeout, no pooled connection in time) answers 503 + Retry-After.
- Any /api request still unanswered after `[api] request_timeout_s` answers 503 too: a hung
  server (connections open, nothing answers) would otherwise hold it for the whole outage.
  The worker thread it ran on stays blocked until the database answers or drops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from afasa_ops.platform.availability import Unavailable, busy_or_unavailable, one_line
from afasa_ops.redact import redact

# uvicorn configures this logger: our lines come out like its own.
log = logging.getLogger("uvicorn.error")

RETRY_AFTER_S = 5


def unavailable_response(what: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{what} unavailable, retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install(app: FastAPI, request_timeout_s: float) -> None:
    """Register the handlers and the deadline. Call before the metrics middleware is added,
    so that it (outermost) counts the 503s answered here."""

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        dependency = busy_or_unavailable(exc)
        if dependency is not None:
            log.warning("%s: 503, %s unavailable: %s", where, dependency, redact(one_line(exc)))
            return unavailable_response(dependency)
        log.error("%s: 500, database error: %s", where, redact(one_line(exc)))
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(Unavailable, database_error)
    if request_timeout_s > 0:
        app.add_middleware(RequestDeadline, timeout_s=request_timeout_s)


class RequestDeadline:
    """Pure ASGI: answer 503 for an /api request not answered in time."""

    def __init__(self, app: Any, timeout_s: float, prefix: str = "/api") -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.prefix = prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = False
        expired = False

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if expired:
                return  # the 503 went out already; a late answer is dropped
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        if task in done or started:
            await task
            return
        expired = True
        task.cancel()  # a thread under it finishes (or not) on its own; nobody waits for it
        task.add_done_callback(_consume_result)
        log.warning(
            "%s %s: 503, no answer within %ss (database hung?)",
            scope.get("method", "?"),
            scope.get("path", "?"),
            self.timeout_s,
        )
        body = json.dumps({"detail": "database unavailable, retry later"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(RETRY_AFTER_S).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _consume_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "never retrieved"
