"""uvicorn's h11 protocol with two guards its options lack.

- Request headers larger than `[api] max_header_bytes` are answered 431 (uvicorn answers an
  oversized head with a 400, or not at all) and the connection closed.
- A connection must deliver a request's headers within `[api] header_timeout_s` of opening
  (or of the previous response): idle connections, and slow-loris ones that send half a
  request head, are closed (408 when something was sent) instead of held forever. Idle
  keep-alive connections between requests go after uvicorn's `timeout_keep_alive`
  (`[api] keep_alive_s`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    max_header_bytes = 64 * 1024
    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_tail = b""
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            window = self._head_tail + data
            # Bytes count against the head only up to its blank line: a body may follow.
            end = window.find(b"\r\n\r\n")
            head_part = len(data) if end < 0 else max(end + 4 - len(self._head_tail), 0)
            self._head_bytes += head_part
            if self._head_bytes > self.max_header_bytes:
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    f"request headers larger than {self.max_header_bytes} bytes",
                )
                return
            self._head_tail = window[-3:]
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_deadline()  # the head arrived: the body has its own deadline

    def on_response_complete(self) -> None:
        self._head_bytes = 0
        self._head_tail = b""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._head_bytes or self._head_tail:
            self._refuse(
                408,
                "Request Timeout",
                f"request headers did not arrive within {self.header_timeout_s:g}s",
            )
        else:
            self.transport.close()  # idle: nothing to answer

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        """Answer outside h11's state machine (no request was parsed) and close."""
        self._disarm_head_deadline()
        body = json.dumps({"detail": detail}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()


def guarded_protocol(max_header_bytes: int, header_timeout_s: float) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type(
        "ConfiguredGuardedH11Protocol",
        (GuardedH11Protocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout_s": header_timeout_s},
    )
