"""What both stubs share: a threaded HTTP server with a small route table, JSON answers,
the caller's tenant read (not verified: the stubs never checked signatures either) from the
bearer token, /healthz, /readyz and /metrics, and one log line per request."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]
Handler = Callable[["Request"], Answer]


def log(service: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {service}: {message}", file=sys.stdout, flush=True)


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    tenant_id: str | None


def tenant_of(authorization: str) -> str | None:
    """The tenant_id claim of a bearer JWT, decoded without checking the signature."""
    if not authorization.lower().startswith("bearer "):
        return None
    parts = authorization.split(" ", 1)[1].strip().split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        return None
    tenant = claims.get("tenant_id") if isinstance(claims, dict) else None
    return str(tenant) if tenant else None


class Routes:
    """(method, path pattern) -> handler; `{name}` in a pattern matches one path segment."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.table: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self.requests = 0

    def add(self, method: str, pattern: str, handler: Handler, *, auth: bool = True) -> None:
        regex = re.sub(r"\{([a-z_]+)\}", r"(?P<\1>[^/]+)", pattern)
        self.table.append((method, re.compile(f"^{regex}/?$"), handler, auth))

    def answer(self, method: str, path: str, headers: Any, raw: bytes) -> Answer:
        self.requests += 1
        for want, regex, handler, auth in self.table:
            match = regex.match(path)
            if match is None or want != method:
                continue
            tenant = tenant_of(headers.get("Authorization", ""))
            if auth and tenant is None:
                return 401, {"detail": "missing or malformed bearer token"}
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return 400, {"detail": "body is not JSON"}
            return handler(Request(method, path, match.groupdict(), body, tenant))
        return 404, {"detail": "Not Found"}


def serve(routes: Routes, host: str, port: int) -> ThreadingHTTPServer:
    routes.add("GET", "/healthz", lambda r: (200, {"status": "ok"}), auth=False)
    routes.add("GET", "/readyz", lambda r: (200, {"status": "ready"}), auth=False)
    routes.add("GET", "/metrics", lambda r: (200, _metrics(routes)), auth=False)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            code, body = routes.answer(self.command, path, self.headers, raw)
            if path not in ("/healthz", "/readyz", "/metrics"):
                log(routes.service, f"{self.command} {path} -> {code}")
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            kind = "text/plain" if isinstance(body, str) else "application/json"
            try:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass  # one line per request is written by _handle

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def _metrics(routes: Routes) -> str:
    return f'http_requests_total{{service="{routes.service}"}} {routes.requests}\n'
