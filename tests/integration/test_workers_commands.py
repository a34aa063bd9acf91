"""worker commands against a real ThingsBoard HTTP double, NATS JetStream and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from afasa_ops.platform import devices, events
from tests.support.platform_db import PlatformDb, add_tenant
from tests.support.services import NatsServer
from tests.support.thingsboard_double import ThingsboardDouble
from tests.support.workers import (
    WorkerProcess,
    admin_rows,
    admin_scalar,
    subject_messages,
    wait_for,
    write_config,
)


@pytest.fixture
def tb() -> Iterator[ThingsboardDouble]:
    with ThingsboardDouble() as double:
        yield double


@pytest.fixture
def worker(
    pdb: PlatformDb, nats_server: NatsServer, tb: ThingsboardDouble, tmp_path: Path
) -> Iterator[WorkerProcess]:
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{tmp_path}/s",
        workers={"max_deliver": 3, "backoff_s": [0.1]},
        extra=f'[thingsboard]\nbase_url = "{tb.base_url}"\nusername = "{tb.username}"\n'
        'password = { env = "TB_TEST_PASSWORD" }',
    )
    w = WorkerProcess(
        cfg, "commands", tmp_path / "commands.log", env={"TB_TEST_PASSWORD": tb.password}
    ).start()
    w.wait_healthy()
    yield w
    w.stop()


def add_device(admin_dsn: str, tenant: uuid.UUID, external_id: str, tb_id: str | None) -> uuid.UUID:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO devices (tenant_id, provider, external_id, name, kind, thingsboard_id) "
            "VALUES (%s, 'ubibot', %s, %s, 'sensor', %s) RETURNING id",
            (tenant, external_id, f"dev {external_id}", tb_id),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def command_row(pdb: PlatformDb, cid: uuid.UUID) -> tuple:  # type: ignore[type-arg]
    return admin_rows(
        pdb.admin_dsn, "SELECT status, error, result FROM device_commands WHERE id = %s", (cid,)
    )[0]


def test_disable_is_applied_to_thingsboard_then_recorded_once(
    pdb: PlatformDb, engine, tb: ThingsboardDouble, worker: WorkerProcess, nats_server: NatsServer
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "cmd-remote")
    tb.add_device("tb-1", "sensor 1")
    device = add_device(pdb.admin_dsn, tenant, "c1", "tb-1")
    cid = devices.set_device_enabled(
        engine, tenant, device, False, actor="user-7", correlation_id="corr-1"
    )
    assert cid is not None
    wait_for(lambda: command_row(pdb, cid)[0] != "requested", 60, "command finished")
    status, error, result = command_row(pdb, cid)
    assert (status, error) == ("completed", None)
    assert json.loads(result)["remote"] is True
    assert tb.attributes["tb-1"] == {"enabled": False}
    view = devices.get_device(engine, tenant, device)
    assert view is not None and view.desired_enabled is False and view.reported_enabled is False
    actions = [
        r[0]
        for r in admin_rows(
            pdb.admin_dsn,
            "SELECT action FROM audit_log WHERE tenant_id = %s ORDER BY occurred_at",
            (tenant,),
        )
    ]
    assert actions == ["device.disable.requested", "device.disable.completed"]
    done = wait_for(
        lambda: subject_messages(nats_server.url, events.DEVICE_COMMAND_COMPLETED),
        30,
        "completed event",
    )
    body = json.loads(done[0].data)
    assert body["data"]["command_id"] == str(cid) and body["data"]["remote"] is True
    assert body["correlation_id"] == "corr-1"
    assert len(tb.writes) == 1


def test_a_device_without_mapping_completes_locally_and_never_claims_remote_success(
    pdb: PlatformDb, engine, tb: ThingsboardDouble, worker: WorkerProcess
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "cmd-local")
    device = add_device(pdb.admin_dsn, tenant, "c2", None)
    cid = devices.set_device_enabled(engine, tenant, device, False, actor="user-8")
    assert cid is not None
    wait_for(lambda: command_row(pdb, cid)[0] != "requested", 60, "command finished")
    status, _error, result = command_row(pdb, cid)
    doc = json.loads(result)
    assert status == "completed" and doc["remote"] is False and doc["applied"] == "local"
    assert "no ThingsBoard mapping" in doc["reason"]
    assert tb.writes == []
    view = devices.get_device(engine, tenant, device)
    assert view is not None and view.reported_enabled is None  # nothing reported it


def test_thingsboard_failing_ends_failed_after_max_deliver_with_the_error(
    pdb: PlatformDb, engine, tb: ThingsboardDouble, worker: WorkerProcess, nats_server: NatsServer
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "cmd-fail")
    tb.add_device("tb-9")
    tb.fail_device("tb-9", 503)
    device = add_device(pdb.admin_dsn, tenant, "c9", "tb-9")
    cid = devices.set_device_enabled(engine, tenant, device, True, actor="user-9")
    assert cid is not None
    wait_for(lambda: command_row(pdb, cid)[0] != "requested", 60, "command finished")
    status, error, _ = command_row(pdb, cid)
    assert status == "failed" and "HTTP 503" in error
    dlq = wait_for(
        lambda: subject_messages(nats_server.url, "afasa.dlq.device.command.requested"), 30, "dlq"
    )
    assert dlq[0].headers["Afasa-Deliveries"] == "3"
    view = devices.get_device(engine, tenant, device)
    assert view is not None and view.reported_enabled is None


def test_a_tenant_cannot_command_another_tenants_device(pdb: PlatformDb, engine) -> None:  # type: ignore[no-untyped-def]
    a = add_tenant(pdb.admin_dsn, "cmd-a")
    b = add_tenant(pdb.admin_dsn, "cmd-b")
    theirs = add_device(pdb.admin_dsn, b, "cb", "tb-b")
    assert devices.set_device_enabled(engine, a, theirs, False, actor="intruder") is None
    assert devices.get_device(engine, a, theirs) is None
    assert (
        admin_scalar(
            pdb.admin_dsn, "SELECT count(*) FROM device_commands WHERE device_id = %s", (theirs,)
        )
        == 0
    )
    assert (
        admin_scalar(pdb.admin_dsn, "SELECT desired_enabled FROM devices WHERE id = %s", (theirs,))
        is True
    )
