"""Real services for tests: the machine's PostgreSQL, private NATS JetStream servers, helpers.

Under CI=true a missing service fails the test run; locally it skips with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ADMIN_DSN = os.environ.get("AFASA_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("AFASA_TEST_NATS_URL", "nats://127.0.0.1:4222")
IN_CI = os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """A needed service is missing: fail under CI, skip locally."""
    if IN_CI:
        pytest.fail(f"required service unavailable under CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def dsn_for(database: str, base: str = PG_ADMIN_DSN) -> str:
    head, _, _ = base.rpartition("/")
    return f"{head}/{database}"


def pg_available(server_dsn: str = PG_ADMIN_DSN) -> str | None:
    try:
        import psycopg

        with psycopg.connect(server_dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"PostgreSQL at {server_dsn}: {exc}"


@contextmanager
def fresh_database(prefix: str = "afasa_test", server_dsn: str = PG_ADMIN_DSN) -> Iterator[str]:
    """A new, empty database; yields its admin DSN and drops it afterwards. `server_dsn`: a
    private cluster's (tests/support/pg_cluster.py) instead of the machine's server."""
    import psycopg

    reason = pg_available(server_dsn)
    if reason:
        unavailable(reason)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn_for(name, server_dsn)
    finally:
        # A fault-injection test may have left the private server down: nothing to drop then.
        with (
            contextlib.suppress(psycopg.OperationalError),
            psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class NatsServer:
    """A private nats-server with JetStream: tests can stop and restart it freely."""

    port: int
    store_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            unavailable("nats-server binary not found")
        self.proc = subprocess.Popen(
            [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_port("127.0.0.1", self.port):
            self.stop()
            unavailable(f"nats-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill9(self) -> None:
        """SIGKILL the server: no clean shutdown, the store is recovered on the next start."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
