"""A ThingsBoard REST stand-in (the demo stack) and test double: a real HTTP server on 127.0.0.1.

POST /api/auth/login -> {"token"}; X-Authorization: Bearer <token> required elsewhere;
POST /api/plugins/telemetry/DEVICE/{id}/attributes/SHARED_SCOPE stores attributes;
GET  /api/plugins/telemetry/DEVICE/{id}/values/attributes/SHARED_SCOPE reads them;
GET  /api/tenant/devices?pageSize=&page= pages with hasNext. Unknown devices get 404;
`fail_device(id, status)` makes writes to one device fail."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from standins.server import QuietHandler, StandInServer

ATTR_PREFIX = "/api/plugins/telemetry/DEVICE/"


@dataclass
class ThingsboardDouble(StandInServer):
    username: str = "tenant@thingsboard.org"
    password: str = field(default_factory=lambda: secrets.token_hex(8))
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"name": ...}
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing: dict[str, int] = field(default_factory=dict)
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_device(self, device_id: str, name: str = "") -> None:
        self.devices[device_id] = {"id": {"id": device_id, "entityType": "DEVICE"}, "name": name}

    def fail_device(self, device_id: str, status: int) -> None:
        self.failing[device_id] = status

    def start(self) -> ThingsboardDouble:
        outer = self

        class Handler(QuietHandler):
            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _send(self, code: int, doc: Any) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authed(self) -> bool:
                header = self.headers.get("X-Authorization", "")
                token = header.removeprefix("Bearer ").strip()
                if token not in outer.tokens:
                    self._send(401, {"status": 401, "message": "Authentication failed"})
                    return False
                return True

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                body = self._body()
                if path == "/api/auth/login":
                    if (
                        body
                        and body.get("username") == outer.username
                        and body.get("password") == outer.password
                    ):
                        token = secrets.token_urlsafe(24)
                        outer.tokens.add(token)
                        self._send(200, {"token": token, "refreshToken": "r"})
                    else:
                        self._send(401, {"status": 401, "message": "Invalid username or password"})
                    return
                if not self._authed():
                    return
                if path.startswith(ATTR_PREFIX) and path.endswith("/attributes/SHARED_SCOPE"):
                    device_id = path[len(ATTR_PREFIX) :].split("/")[0]
                    if device_id in outer.failing:
                        code = outer.failing[device_id]
                        self._send(code, {"status": code, "message": "failure injected"})
                        return
                    if device_id not in outer.devices:
                        self._send(404, {"status": 404, "message": "Device not found"})
                        return
                    if not isinstance(body, dict):
                        self._send(400, {"status": 400, "message": "JSON object expected"})
                        return
                    with outer.lock:
                        outer.attributes.setdefault(device_id, {}).update(body)
                        outer.writes.append((device_id, dict(body)))
                    self._send(200, {})
                    return
                self._send(404, {"status": 404, "message": "Not found"})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/healthz":  # the stand-in's own liveness, not ThingsBoard's
                    self._send(200, {"ok": True})
                    return
                if not self._authed():
                    return
                if parts.path == "/api/tenant/devices":
                    q = parse_qs(parts.query)
                    size = int(q.get("pageSize", ["10"])[0])
                    page = int(q.get("page", ["0"])[0])
                    items = list(outer.devices.values())
                    chunk = items[page * size : (page + 1) * size]
                    self._send(
                        200,
                        {
                            "data": chunk,
                            "totalElements": len(items),
                            "hasNext": (page + 1) * size < len(items),
                        },
                    )
                    return
                if parts.path.startswith(ATTR_PREFIX) and parts.path.endswith(
                    "/values/attributes/SHARED_SCOPE"
                ):
                    device_id = parts.path[len(ATTR_PREFIX) :].split("/")[0]
                    if device_id not in outer.devices:
                        self._send(404, {"status": 404, "message": "Device not found"})
                        return
                    now = int(time.time() * 1000)
                    attrs = outer.attributes.get(device_id, {})
                    self._send(
                        200, [{"key": k, "value": v, "lastUpdateTs": now} for k, v in attrs.items()]
                    )
                    return
                self._send(404, {"status": 404, "message": "Not found"})

        return self.serve(Handler)
