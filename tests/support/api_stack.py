"""Harness for the API tests: a migrated database reached as a private NOBYPASSRLS role, a
UbiBot cloud double, a config file, and `afasa-ops serve` / workers as real processes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.platform_db import PlatformDb, add_tenant, platform_database
from tests.support.services import free_port
from tests.support.ubibot_double import UbibotDouble

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = base64.b64encode(b"k" * 32).decode()


# The API tests use the same migrated database and private app role as the workers' tests.
ApiDb = PlatformDb


def migrated_database() -> AbstractContextManager[PlatformDb]:
    return platform_database("afasa_api")


def add_device(
    admin_dsn: str, tenant: uuid.UUID, external_id: str, kind: str = "sensor"
) -> uuid.UUID:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO devices (tenant_id, provider, external_id, name, kind) "
            "VALUES (%s, 'ubibot', %s, %s, %s) RETURNING id",
            (tenant, external_id, f"device {external_id}", kind),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def admin_rows(admin_dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]


def ubibot_channel(i: int) -> dict[str, Any]:
    """A channel as UbiBot sends it: numbers as strings, nested JSON as strings."""
    return {
        "channel_id": str(300000 + i),
        "name": f"Greenhouse {i}",
        "product_id": "ubibot-ws1",
        "device_id": f"dev-{i:04d}",
        "serial": f"SN{i:06d}",
        "last_entry_date": "2026-11-20T10:00:00Z",
        "net": "1",
        "last_values": json.dumps({"field1": {"value": 21.5}}),
    }


class UbibotCloud(UbibotDouble):
    """GET /channels?account_key=K answers K's channels; an unknown key gets UbiBot's error."""


def write_config(
    path: Path,
    db: ApiDb,
    *,
    nats_url: str,
    storage_url: str,
    issuer_url: str | None = None,
    ubibot_url: str = "http://127.0.0.1:9",
    port: int = 8000,
    extra: str = "",
    storage_lines: list[str] | None = None,
) -> Path:
    lines = [
        "[repo]",
        'path = "."',
        "[database]",
        f'admin_dsn = "{db.admin_dsn}"',
        f'app_dsn = "{db.app_dsn}"',
        f'app_role = "{db.app_role}"',
        "[nats]",
        f'url = "{nats_url}"',
        "[storage]",
        f'url = "{storage_url}"',
        *(storage_lines or []),
        "[ubibot]",
        f'base_url = "{ubibot_url}"',
        "[workers]",
        "ack_wait_s = 5.0",
        "relay_interval_s = 0.1",
        'metrics_host = "127.0.0.1"',
        "[api]",
        f"port = {port}",
        'audience = "afasa-api"',
    ]
    if issuer_url:
        lines.append(f'oidc_issuer_url = "{issuer_url}"')
    lines.append(extra)
    path.write_text("\n".join(lines) + "\n")
    return path


def create_stream(nats_url: str, stream: str = "AFASA") -> None:
    import asyncio

    import nats

    async def go() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(name=stream, subjects=["afasa.>"])
        finally:
            await nc.close()

    asyncio.run(go())


@dataclass
class Process:
    """An afasa-ops subprocess (`serve` or `worker ...`) with its log in a file."""

    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "afasa_ops", *self.argv],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        return self

    def wait_http(self, url: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except Exception as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"{url} not answering: {last}; {self.logs()[-3000:]}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if hasattr(self, "_log"):
            self._log.close()


def serve_process(config: Path, port: int, log_path: Path, env: dict[str, str]) -> Process:
    proc = Process(["--config", str(config), "serve", "--port", str(port)], log_path, env)
    proc.start()
    proc.wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc


def new_port() -> int:
    return free_port()


@dataclass
class ApiStack:
    """The in-process service (FastAPI TestClient) over the real database and NATS."""

    db: ApiDb
    issuer: Any
    client: Any
    settings: Any
    nats: Any
    ubibot: UbibotCloud
    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    storage_dir: Path

    def auth(self, tenant: uuid.UUID, roles: list[str] | None = None) -> dict[str, str]:
        return dict(self.issuer.auth(tenant, roles))


@contextmanager
def api_stack(
    tmp: Path,
    storage_url: str | None = None,
    storage_lines: list[str] | None = None,
    tenant_a: uuid.UUID | None = None,
    extra: str = "",
) -> Iterator[ApiStack]:
    from fastapi.testclient import TestClient

    from afasa_ops.api.app import create_app
    from afasa_ops.api.runtime import build_runtime
    from afasa_ops.config import load_settings
    from afasa_ops.platform.secrets import store_secret
    from tests.support.oidc_issuer import running_issuer
    from tests.support.services import NatsServer

    nats_server = NatsServer(free_port(), tmp / "jetstream")
    nats_server.start()
    try:
        with (
            migrated_database() as db,
            running_issuer() as issuer,
            UbibotCloud() as ubibot,
        ):
            create_stream(nats_server.url)
            storage = tmp / "storage"
            config = write_config(
                tmp / "afasa-ops.toml",
                db,
                nats_url=nats_server.url,
                storage_url=storage_url or f"file://{storage}",
                issuer_url=issuer.url,
                ubibot_url=ubibot.base_url,
                storage_lines=storage_lines,
                extra=extra,
            )
            settings = load_settings(config)
            tenant_a = add_tenant(db.admin_dsn, "farm A", tenant_a)
            tenant_b = add_tenant(db.admin_dsn, "farm B")
            runtime = build_runtime(settings)
            key = base64.b64decode(MASTER_KEY)
            store_secret(runtime.engine, tenant_a, "ubibot_api_key", "key-a", key)
            store_secret(runtime.engine, tenant_b, "ubibot_api_key", "key-b", key)
            with TestClient(create_app(runtime)) as client:
                yield ApiStack(
                    db, issuer, client, settings, nats_server, ubibot, tenant_a, tenant_b, storage
                )
    finally:
        nats_server.stop()


class WorkerThread:
    """A worker built by the workers' own code, run on its own event loop in a thread."""

    def __init__(self, kind: str, settings: Any) -> None:
        from afasa_ops.platform.storage import open_storage
        from afasa_ops.workers import commands, report
        from afasa_ops.workers.setup import app_engine, runtime_options

        options = runtime_options(settings)
        options.metrics_port = None
        self.engine = app_engine(settings, pool_size=2)
        if kind == "report":
            storage = open_storage(settings.storage, settings.base_dir)
            self.runtime = report.build(options, self.engine, storage)
        elif kind == "commands":
            self.runtime = commands.build(options, self.engine, None)
        else:
            raise ValueError(kind)
        self.loop: Any = None
        self.thread = threading.Thread(target=self._run, name=f"worker-{kind}", daemon=True)

    def _run(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self.runtime.run())
        finally:
            self.loop.close()

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.runtime.request_stop, "test over")
            self.thread.join(timeout=30)
        self.engine.dispose()


def worker_process(config: Path, kind: str, log_path: Path, env: dict[str, str]) -> Process:
    """`afasa-ops worker KIND` as a real process, waited for on its /healthz."""
    port = free_port()
    proc = Process(["--config", str(config), "worker", kind, "--port", str(port)], log_path, env)
    proc.start()
    proc.wait_http(f"http://127.0.0.1:{port}/healthz")
    return proc
