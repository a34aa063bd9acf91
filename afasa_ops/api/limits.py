"""Request guards in front of the routes (pure ASGI, so nothing reads the body before them).

- A body larger than `[api] max_body_bytes` is answered 413 before it is read: at once when
  Content-Length says so, else as soon as the chunks pass the limit.
- A body must arrive whole within `[api] body_timeout_s`: one shorter than its Content-Length
  is answered 408 and the connection closed, instead of holding a worker forever.
- NUL bytes in query parameters are a 422 naming the parameter: PostgreSQL text cannot hold
  them, so they would otherwise surface as a 500 from the driver.
Refusals close the connection: the unread rest of a body must not be taken for a request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad_param = nul_parameter(scope.get("query_string", b""))
        if bad_param is not None:
            await _answer(
                send,
                422,
                {
                    "detail": f"invalid request: {bad_param}: must not contain NUL bytes",
                    "errors": [{"field": bad_param, "message": "must not contain NUL bytes"}],
                },
            )
            return
        declared = _content_length(scope)
        if declared == -1:
            await _answer(send, 400, {"detail": "Content-Length is not a number"}, close=True)
            return
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(send)
            return
        body = await self._read_body(receive, send)
        if body is None:
            return  # answered (408/413) or the client went away
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                detail = f"the request body did not arrive within {self.body_timeout_s:g}s"
                await _answer(send, 408, {"detail": detail}, close=True)
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        detail = f"request body larger than {self.max_body_bytes} bytes ([api] max_body_bytes)"
        await _answer(send, 413, {"detail": detail}, close=True)


def nul_parameter(query_string: bytes) -> str | None:
    """The first query parameter whose name or value holds a NUL byte, or None."""
    if b"%00" not in query_string.lower() and b"\x00" not in query_string:
        return None
    text = query_string.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "\\0") or "(empty name)"
    return None


def _content_length(scope: Scope) -> int | None:
    """The declared body size; None when absent, -1 when not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read once, handed to the app as one message; later calls wait on the client
    (for http.disconnect), as the server's own receive does."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, doc: dict[str, Any], *, close: bool = False) -> None:
    data = json.dumps(doc).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
