"""A worker acting for tenant A cannot read or write tenant B's rows: checked as the
NOBYPASSRLS application role the workers use (a superuser would pass vacuously)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from afasa_ops.platform import events, outbox, reports
from afasa_ops.platform.db import tenant_transaction
from tests.support.platform_db import PlatformDb, add_tenant
from tests.support.services import NatsServer
from tests.support.workers import (
    WorkerProcess,
    admin_scalar,
    publish_raw,
    subject_messages,
    wait_for,
    write_config,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=10)


def test_the_worker_role_is_really_subject_to_rls(pdb: PlatformDb, engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        user, superuser, bypass = conn.execute(
            sa.text(
                "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
    assert user == pdb.app_role and superuser is False and bypass is False


def test_tenant_a_cannot_read_or_write_tenant_b_rows(pdb: PlatformDb, engine) -> None:  # type: ignore[no-untyped-def]
    a = add_tenant(pdb.admin_dsn, "rls-a")
    b = add_tenant(pdb.admin_dsn, "rls-b")
    mine = reports.request_report(engine, a, START, END, "csv")
    theirs = reports.request_report(engine, b, START, END, "csv")
    assert reports.get_report(engine, a, theirs) is None
    assert [r.id for r in reports.list_reports(engine, a)] == [mine]
    assert all(p.event_id for p in outbox.pending(engine, a))
    assert {json.loads(p.body)["tenant_id"] for p in outbox.pending(engine, a)} == {str(a)}
    with tenant_transaction(engine, a) as conn:
        hidden = conn.execute(
            sa.text("SELECT count(*) FROM reports WHERE tenant_id = :b"), {"b": b}
        ).scalar()
        changed = conn.execute(
            sa.text("UPDATE reports SET status = 'failed' WHERE id = :r"), {"r": theirs}
        ).rowcount
        gone = conn.execute(
            sa.text("DELETE FROM event_outbox WHERE tenant_id = :b"), {"b": b}
        ).rowcount
    assert (hidden, changed, gone) == (0, 0, 0)
    with (
        pytest.raises(sa.exc.DBAPIError, match="row-level security"),
        tenant_transaction(engine, a) as conn,
    ):
        conn.execute(
            sa.text(
                "INSERT INTO reports (tenant_id, format, range_from, range_to) VALUES (:b, 'csv', :f, :t)"
            ),
            {"b": b, "f": START, "t": END},
        )
    # Reclaiming B's report as A is refused: claim sees nothing.
    assert reports.claim(engine, a, theirs) is None
    assert (
        admin_scalar(pdb.admin_dsn, "SELECT status FROM reports WHERE id = %s", (theirs,))
        == "queued"
    )
    # With no tenant set at all, nothing is visible.
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM reports")).scalar() == 0


def test_a_forged_event_for_tenant_a_naming_b_report_changes_nothing(
    pdb: PlatformDb, engine, nats_server: NatsServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = add_tenant(pdb.admin_dsn, "forge-a")
    b = add_tenant(pdb.admin_dsn, "forge-b")
    theirs = reports.request_report(engine, b, START, END, "csv")
    # Take B's outbox row away so only the forged event reaches the worker.
    with tenant_transaction(engine, b) as conn:
        conn.execute(sa.text("UPDATE event_outbox SET published_at = now()"))
    storage = tmp_path / "storage"
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage}"
    )
    w = WorkerProcess(cfg, "report", tmp_path / "report.log").start()
    try:
        w.wait_healthy()
        forged = events.new_event(
            events.REPORT_REQUESTED, a, {"report_id": str(theirs)}, producer="attacker"
        )
        publish_raw(nats_server.url, events.REPORT_REQUESTED, forged.to_bytes(), forged.event_id)
        dlq = wait_for(
            lambda: subject_messages(nats_server.url, "afasa.dlq.report.requested"), 30, "dlq"
        )
        assert "not visible to tenant" in dlq[0].headers["Afasa-Error"]
        assert dlq[0].headers["Afasa-Deliveries"] == "1"  # permanent: no retries
    finally:
        w.stop()
    status, attempts = (
        admin_scalar(pdb.admin_dsn, "SELECT status FROM reports WHERE id = %s", (theirs,)),
        admin_scalar(pdb.admin_dsn, "SELECT attempts FROM reports WHERE id = %s", (theirs,)),
    )
    assert (status, attempts) == ("queued", 0)
    assert not (storage / reports.object_key(b, theirs, "csv")).exists()
    assert not (storage / reports.object_key(a, theirs, "csv")).exists()
