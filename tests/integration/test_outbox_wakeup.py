"""The outbox relay wakes on commit (NOTIFY afasa_outbox), not only on its timed sweep: with a
relay interval of ten minutes, a command requested after the worker's first sweep is still
relayed and applied, also after the listening connection was cut. Real PostgreSQL, NATS
JetStream and a `worker commands` process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from afasa_ops.platform import devices
from tests.support.platform_db import PlatformDb, add_tenant
from tests.support.services import NatsServer
from tests.support.workers import WorkerProcess, admin_scalar, wait_for, write_config

# Far longer than any wait below: only a notification can make the relay publish in time.
RELAY_INTERVAL_S = 600.0
LISTEN_SQL = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE query = 'LISTEN afasa_outbox' AND datname = current_database()"
)


@pytest.fixture
def worker(pdb: PlatformDb, nats_server: NatsServer, tmp_path: Path) -> Iterator[WorkerProcess]:
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{tmp_path}/s",
        workers={"relay_interval_s": RELAY_INTERVAL_S},
    )
    w = WorkerProcess(cfg, "commands", tmp_path / "commands.log").start()
    w.wait_healthy()
    # The first sweep ran at start; from here on only a wake-up relays anything.
    wait_for(lambda: admin_scalar(pdb.admin_dsn, LISTEN_SQL), 30, "the worker's LISTEN")
    yield w
    w.stop()


def _device(admin_dsn: str, tenant: uuid.UUID) -> uuid.UUID:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO devices (tenant_id, provider, external_id, name, kind) "
            "VALUES (%s, 'ubibot', 'wake-1', 'wake sensor', 'sensor') RETURNING id",
            (tenant,),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _status(pdb: PlatformDb, command: uuid.UUID) -> str:
    return str(admin_scalar(pdb.admin_dsn, "SELECT status FROM device_commands WHERE id = %s",
                            (command,)))  # fmt: skip


def test_a_committed_command_is_relayed_without_waiting_for_the_sweep(
    pdb: PlatformDb, engine, worker: WorkerProcess
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "wake")
    device = _device(pdb.admin_dsn, tenant)
    command = devices.set_device_enabled(engine, tenant, device, False, actor="t")
    assert command is not None
    wait_for(lambda: _status(pdb, command) == "completed", 30, "the command applied")
    published = admin_scalar(
        pdb.admin_dsn,
        "SELECT count(*) FROM event_outbox WHERE tenant_id = %s AND published_at IS NULL",
        (tenant,),
    )
    assert published == 0, worker.logs()[-2000:]


def test_the_listener_comes_back_after_its_connection_is_cut(
    pdb: PlatformDb, engine, worker: WorkerProcess
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "wake-cut")
    device = _device(pdb.admin_dsn, tenant)
    before = admin_scalar(pdb.admin_dsn, LISTEN_SQL)
    admin_scalar(pdb.admin_dsn, "SELECT pg_terminate_backend(%s)", (before,))
    wait_for(
        lambda: admin_scalar(pdb.admin_dsn, LISTEN_SQL) not in (None, before),
        30,
        "the worker listening again",
    )
    command = devices.set_device_enabled(engine, tenant, device, False, actor="t")
    assert command is not None
    wait_for(lambda: _status(pdb, command) == "completed", 30, "the command applied")
    assert "outbox listener" in worker.logs()
