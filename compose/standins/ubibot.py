"""A UbiBot cloud stand-in (the demo stack) and test double: a real HTTP server on 127.0.0.1 speaking GET /channels?account_key=.

Per account key it answers with channels, or fails the ways UbiBot does: HTTP 500, a slow
answer (timeout), {"result":"error"} with HTTP 200, malformed JSON, a channel lacking
channel_id. Reusable by any test: `with UbibotDouble() as ubi: ubi.set_channels(key, ...)`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from standins.server import QuietHandler, StandInServer

FAILURES = ("http500", "timeout", "error200", "malformed", "no_channel_id", "rate_limited")


def make_channel(i: int, prefix: str = "ch", name: str | None = None) -> dict[str, Any]:
    """A channel shaped like UbiBot's: numbers as strings, nested JSON as strings."""
    return {
        "channel_id": f"{prefix}{100000 + i}",
        "name": name or f"Greenhouse sensor {i}",
        "product_id": "ubibot-ws1",
        "device_id": f"dev-{i:06d}",
        "serial": f"SN{i:08d}",
        "last_entry_date": f"2026-11-20T10:{i % 60:02d}:00Z",
        "net": "1",
        "field1": str(20 + i % 10),
        "last_values": json.dumps(
            {"field1": {"value": 21.5, "created_at": "2026-11-20T10:00:00Z"}}
        ),
        "vconfig": json.dumps({"field1": {"h": "0", "name": "Temperature", "unit": "C"}}),
        "status": json.dumps({"csq": "20"}),
    }


def make_channels(n: int, prefix: str = "ch") -> list[dict[str, Any]]:
    return [make_channel(i, prefix) for i in range(n)]


@dataclass
class UbibotDouble(StandInServer):
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    slow_s: float = 5.0
    requests: list[str] = field(default_factory=list)

    def set_channels(self, account_key: str, channels: list[dict[str, Any]]) -> None:
        self.channels[account_key] = channels
        self.failures.pop(account_key, None)

    def fail(self, account_key: str, how: str) -> None:
        assert how in FAILURES, how
        self.failures[account_key] = how

    def _answer(self, key: str) -> tuple[int, bytes]:
        how = self.failures.get(key)
        if how == "http500":
            return 500, b"<html>Internal Server Error</html>"
        if how == "timeout":
            time.sleep(self.slow_s)
        if how == "error200":
            body = {
                "result": "error",
                "errorCode": "invalid_api_key",
                "desp": "account_key invalid",
            }
            return 200, json.dumps(body).encode()
        if how == "rate_limited":
            body = {"result": "error", "errorCode": "request_too_fast", "desp": "slow down"}
            return 200, json.dumps(body).encode()
        if how == "malformed":
            return 200, b'{"result":"success","channels":[{"channel_id":"1",'
        if key not in self.channels:
            body = {"result": "error", "errorCode": "invalid_api_key", "desp": "unknown key"}
            return 200, json.dumps(body).encode()
        channels = [dict(c) for c in self.channels[key]]
        if how == "no_channel_id" and channels:
            channels[-1].pop("channel_id", None)
        doc = {"result": "success", "server_time": "2026-11-20T10:00:00Z", "channels": channels}
        return 200, json.dumps(doc).encode()

    def start(self) -> UbibotDouble:
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/healthz":  # the stand-in's own liveness, not UbiBot's API
                    self._send(200, b'{"ok":true}')
                    return
                if parts.path.rstrip("/") != "/channels":
                    self._send(404, b'{"result":"error","errorCode":"not_found"}')
                    return
                key = parse_qs(parts.query).get("account_key", [""])[0]
                outer.requests.append(key)
                code, body = outer._answer(key)
                self._send(code, body)

            def _send(self, code: int, body: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        return self.serve(Handler)
