"""The API degrades, it does not fall over: `afasa-ops serve` over a private PostgreSQL that is
stopped, then hung (SIGSTOP), answers 503 with Retry-After and one log line per request,
fast, keeps /readyz answering, recovers by itself, and counts every answer in its metrics."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_stack import MASTER_KEY, Process, add_device, create_stream, write_config
from tests.support.oidc_issuer import running_issuer
from tests.support.pg_cluster import pg_cluster
from tests.support.platform_db import add_tenant, platform_database
from tests.support.services import NatsServer, free_port

BODIES: dict[str, Any] = {
    "/api/report/generate": {
        "type": "custom",
        "format": "csv",
        "range_from": "2026-11-01T00:00:00Z",
        "range_to": "2026-11-02T00:00:00Z",
    }
}


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # generous: the API must be faster
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def api_routes(device: uuid.UUID, report: uuid.UUID) -> list[tuple[str, str]]:
    """Every /api route of the service, with its path parameters filled in."""
    from afasa_ops.api.routes import devices, reports

    out = []
    for router in (devices.router, reports.router):
        for route in router.routes:
            path = getattr(route, "path", "")
            for method in sorted(getattr(route, "methods", ()) or ()):
                filled = path.replace("{device_id}", str(device)).replace(
                    "{report_id}", str(report)
                )
                out.append((method, filled))
    assert len(out) >= 9
    return out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    nats_server = NatsServer(free_port(), tmp_path / "js")
    nats_server.start()
    try:
        with (
            pg_cluster() as pg,
            platform_database("afasa_api_out", server_dsn=pg.admin_dsn) as db,
            running_issuer() as issuer,
        ):
            create_stream(nats_server.url)
            port = free_port()
            cfg = write_config(
                tmp_path / "afasa-ops.toml", db, nats_url=nats_server.url,
                storage_url=f"file://{tmp_path / 'storage'}", issuer_url=issuer.url, port=port,
                extra="request_timeout_s = 4.0",
            )  # fmt: skip
            env = {
                "AFASA_MASTER_KEY_BASE64": MASTER_KEY,
                "AFASA_OPS_DATABASE_CONNECT_TIMEOUT_S": "2",
                "AFASA_OPS_DATABASE_POOL_TIMEOUT_S": "2",
                "AFASA_OPS_DATABASE_API_STATEMENT_TIMEOUT_S": "3",
            }
            tenant = add_tenant(db.admin_dsn, "outage farm")
            device = add_device(db.admin_dsn, tenant, "ch-1")
            proc = Process(
                ["--config", str(cfg), "serve", "--port", str(port)], tmp_path / "serve.log", env
            ).start()
            try:
                base = f"http://127.0.0.1:{port}"
                proc.wait_http(base + "/healthz")
                yield {
                    "pg": pg, "db": db, "base": base, "proc": proc, "device": device,
                    "auth": issuer.auth(tenant, ["tenant_admin"]),
                }  # fmt: skip
            finally:
                proc.stop()
    finally:
        nats_server.stop()


def log_lines(proc: Process, marker: str) -> list[str]:
    return [line for line in proc.logs().splitlines() if marker in line]


def test_every_api_route_answers_503_while_postgres_is_down_or_hung(
    served: dict[str, Any],
) -> None:
    pg, base, proc, auth = served["pg"], served["base"], served["proc"], served["auth"]
    status, _, body = call(
        base + "/api/report/generate", "POST", auth, BODIES["/api/report/generate"]
    )
    assert status == 202, body
    report = uuid.UUID(json.loads(body)["report_id"])
    routes = api_routes(served["device"], report)

    pg.stop()
    before = len(log_lines(proc, ": 503"))
    for method, path in routes:
        status, headers, text = call(base + path, method, auth, BODIES.get(path))
        assert status == 503, (method, path, status, text)
        assert headers.get("Retry-After") == "5", (method, path)
        assert "unavailable" in json.loads(text)["detail"]
    # One line per request, naming the route; not one traceback.
    assert len(log_lines(proc, ": 503")) - before == len(routes), proc.logs()[-3000:]
    assert "Traceback" not in proc.logs()
    status, _, text = call(base + "/readyz")
    assert status == 503 and "database" in json.loads(text)["failed"]

    pg.start()  # it recovers by itself
    assert call(base + "/api/report/reports", "GET", auth)[0] == 200
    assert call(base + "/readyz")[0] in (200, 503)  # NATS/storage are not this test's concern

    pg.hang()  # connections stay open, nothing answers
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(
                pool.map(lambda _: call(base + "/api/report/reports", "GET", auth), range(16))
            )
            ready = call(base + "/readyz")  # while those requests are stuck behind the database
        assert [a[0] for a in answers] == [503] * 16
        assert all(a[1].get("Retry-After") == "5" for a in answers)
        assert ready[0] == 503 and "database" in json.loads(ready[2])["failed"]
    finally:
        pg.resume()
    from tests.support.workers import wait_for

    wait_for(lambda: call(base + "/api/report/reports", "GET", auth)[0] == 200, 60, "recovery")

    # A database error that is not an outage is a 500, also counted, also one line.
    import psycopg

    with psycopg.connect(served["db"].admin_dsn, autocommit=True) as admin:
        admin.execute("ALTER TABLE reports RENAME TO reports_gone")
        try:
            assert call(base + "/api/report/reports", "GET", auth)[0] == 500
        finally:
            admin.execute("ALTER TABLE reports_gone RENAME TO reports")
    _, _, metrics = call(base + "/metrics")
    counted = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'afasa_api_requests_total\{method="GET",route="/api/report/reports",'
            r'status="(\d+)"\} ([0-9.]+)',
            metrics,
        )
    }
    assert counted.get("503", 0) >= 17 and counted.get("500") == 1.0, counted
    assert "Traceback" not in proc.logs()
