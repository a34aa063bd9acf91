"""`afasa-ops serve` as a real process, spoken to over raw sockets: a body over the limit is
refused before it is read, a short body and half-sent headers time out server-side, huge
headers get a 431, idle connections are closed, and a hanging JWKS issuer neither holds up
valid requests nor gets one fetch per request."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from tests.support.api_stack import Process, serve_process, write_config
from tests.support.oidc_issuer import OidcIssuer, running_issuer
from tests.support.platform_db import PlatformDb, add_tenant, platform_database
from tests.support.services import free_port

LIMITS = """max_body_bytes = 4096
body_timeout_s = 1.0
header_timeout_s = 1.0
keep_alive_s = 1.0
jwks_cache_s = 0.5
jwks_timeout_s = 2.0
"""
# Generous: every wait below ends on the server's own deadline well before this.
SOCKET_TIMEOUT_S = 15.0


@dataclass
class Server:
    port: int
    issuer: OidcIssuer
    tenant: uuid.UUID
    db: PlatformDb
    proc: Process

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=SOCKET_TIMEOUT_S)
        return sock

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("sec-serve")
    with platform_database("afasa_srv") as db, running_issuer() as issuer:
        port = free_port()
        config = write_config(
            tmp / "afasa-ops.toml",
            db,
            nats_url="nats://127.0.0.1:9",
            storage_url=f"file://{tmp}/storage",
            issuer_url=issuer.url,
            port=port,
            extra=LIMITS,
        )
        tenant = add_tenant(db.admin_dsn, "serve tenant")
        proc = serve_process(config, port, tmp / "serve.log", {})
        try:
            yield Server(port, issuer, tenant, db, proc)
        finally:
            proc.stop()


def read_response(sock: socket.socket) -> tuple[int | None, bytes, bool]:
    """(status, everything read, whether the server closed the connection)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return _status(data), data, True
        if not chunk:
            return _status(data), data, True
        data += chunk
        if b"\r\n\r\n" in data and b"connection: close" not in data.lower():
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length")
                ),
                None,
            )
            if length is not None and len(body) >= length:
                return _status(data), data, False


def _status(data: bytes) -> int | None:
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12])


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/report/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n"
        )
        status, data, closed = read_response(sock)
    assert status == 413 and closed, data
    assert b"max_body_bytes" in data


def test_a_chunked_body_over_the_limit_is_refused(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/report/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 1024
        # Refused midway, the connection may break under the sender: the answer is there.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(8):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, data, closed = read_response(sock)
    assert status == 413 and closed, data


def test_a_body_shorter_than_its_content_length_times_out_server_side(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/report/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"type": '
        )
        status, data, closed = read_response(sock)
    assert status == 408 and closed, data


def test_headers_of_100_kb_get_a_431(server: Server) -> None:
    with server.connect() as sock:
        big = b"X-Padding: " + b"a" * 100_000 + b"\r\n"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /api/devices HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        status, data, closed = read_response(sock)
    assert status == 431 and closed, data[:200]


def test_an_idle_connection_is_closed(server: Server) -> None:
    with server.connect() as sock:
        _, data, closed = read_response(sock)
    assert closed and data == b""


def test_half_sent_headers_are_answered_408_and_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        status, data, closed = read_response(sock)
    assert status == 408 and closed, data


def test_an_idle_keep_alive_connection_is_closed_after_a_response(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, closed = read_response(sock)
        assert status == 200 and not closed
        # Half of a second request head, then nothing: closed as well.
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        status, data, closed = read_response(sock)
    assert closed and status == 408, data


def test_a_normal_request_still_works(server: Server) -> None:
    r = httpx.post(
        server.url("/api/report/generate"),
        json={"type": "daily", "format": "csv"},
        headers=server.issuer.auth(server.tenant),
        timeout=10,
    )
    assert r.status_code == 202, r.text


def test_a_hanging_jwks_issuer_neither_blocks_valid_requests_nor_is_fetched_per_request(
    server: Server,
) -> None:
    auth = server.issuer.auth(server.tenant)
    first = httpx.get(server.url("/api/devices"), headers=auth, timeout=10)
    assert first.status_code == 200, first.text  # keys cached
    server.issuer.jwks_delay_s = 30.0  # the issuer hangs from now on
    try:
        wait_past_cache_ttl(server)
        before = server.issuer.jwks_requests
        results: list[Any] = []

        def call() -> None:
            try:
                r = httpx.get(server.url("/api/devices"), headers=auth, timeout=4.0)
                results.append(r.status_code)
            except httpx.HTTPError as exc:
                results.append(type(exc).__name__)

        threads = [threading.Thread(target=call) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Ten valid requests, served with the cached keys while one refresh hangs.
        assert results == [200] * 10
        wrong_kid = jwt.encode(
            server.issuer.claims(server.tenant),
            server.issuer.key,
            algorithm="RS256",
            headers={"kid": "rotated-" + uuid.uuid4().hex[:6]},
        )
        for _ in range(10):
            httpx.get(server.url("/api/devices"), headers=auth, timeout=4.0)
            httpx.get(
                server.url("/api/devices"),
                headers={"Authorization": f"Bearer {wrong_kid}"},
                timeout=10.0,
            )
        # One refresh started, however many requests found the keys stale or unknown.
        assert server.issuer.jwks_requests - before <= 1
    finally:
        server.issuer.jwks_delay_s = 0.0


def wait_past_cache_ttl(server: Server) -> None:
    """The cached keys go stale after jwks_cache_s (0.5 s); wait until they must be."""
    time.sleep(0.6)


def test_serve_log_has_no_tracebacks(server: Server) -> None:
    assert "Traceback" not in server.proc.logs()
