"""worker report against the real NATS JetStream and PostgreSQL: ready exactly once through
kill -9, duplicates and NATS restarts; poison messages failed and dead-lettered."""

from __future__ import annotations

import csv
import io
import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from afasa_ops.platform import events, reports
from tests.support.platform_db import PlatformDb, add_tenant
from tests.support.seed import seed_tenant_data
from tests.support.services import NatsServer
from tests.support.workers import (
    WorkerProcess,
    admin_rows,
    admin_scalar,
    publish_raw,
    subject_messages,
    table_locked,
    wait_for,
    write_config,
)

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=30)


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


def start_worker(
    started: list[WorkerProcess], cfg: Path, tmp_path: Path, kind: str = "report", *args: str
) -> WorkerProcess:
    w = WorkerProcess(cfg, kind, tmp_path / f"{kind}-{len(started)}.log", list(args)).start()
    started.append(w)
    w.wait_healthy()
    return w


def ready_ids(url: str, tenant: uuid.UUID) -> list[str]:
    """Report ids of this tenant's ready events on the stream. The module shares one database,
    so a worker may also relay events an earlier test's worker left in the outbox."""
    found = [json.loads(m.data) for m in subject_messages(url, events.REPORT_READY)]
    return [e["data"]["report_id"] for e in found if e["tenant_id"] == str(tenant)]


def status_of(pdb: PlatformDb, rid: uuid.UUID) -> str:
    return str(admin_scalar(pdb.admin_dsn, "SELECT status FROM reports WHERE id = %s", (rid,)))


def objects(storage_dir: Path, tenant: uuid.UUID) -> list[Path]:
    base = storage_dir / "tenant" / str(tenant) / "reports"
    return sorted(p for p in base.glob("*") if p.is_file()) if base.exists() else []


def test_reports_in_every_format_become_ready_with_the_tenants_data(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    a = add_tenant(pdb.admin_dsn, "formats-a")
    b = add_tenant(pdb.admin_dsn, "formats-b")
    seed_tenant_data(pdb.admin_dsn, a, 50, START + timedelta(days=1), label="aphid")
    seed_tenant_data(pdb.admin_dsn, b, 50, START + timedelta(days=1), label="whitefly")
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage_dir}"
    )
    w = start_worker(workers, cfg, tmp_path)
    ids = {
        fmt: reports.request_report(engine, a, START, END, fmt, actor="u1")
        for fmt in reports.FORMATS
    }
    for fmt, rid in ids.items():
        wait_for(lambda rid=rid: status_of(pdb, rid) == "ready", 60, f"{fmt} report ready")
        view = reports.get_report(engine, a, rid)
        assert view is not None and view.s3_key == f"tenant/{a}/reports/{rid}.{fmt}"
        assert (storage_dir / view.s3_key).stat().st_size > 0
    text = (storage_dir / f"tenant/{a}/reports/{ids['csv']}.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == reports.CSV_HEADER
    detections = [r for r in rows if r[0] == "detection"]
    assert len(detections) == 50 and all(r[3] == "aphid" for r in detections)
    assert "whitefly" not in text  # tenant B's rows never reach A's report
    assert any(r[0] == "task" for r in rows) and any(r[0] == "snapshot_count" for r in rows)
    assert (storage_dir / f"tenant/{a}/reports/{ids['pdf']}.pdf").read_bytes().startswith(b"%PDF")
    from openpyxl import load_workbook

    wb = load_workbook(storage_dir / f"tenant/{a}/reports/{ids['xlsx']}.xlsx", read_only=True)
    assert wb.sheetnames == [name for name, _ in reports.SECTIONS]
    sheet = list(wb["detections"].iter_rows(values_only=True))
    assert sheet[0] == tuple(reports.CSV_HEADER[1:]) and len(sheet) == 51
    assert {r[2] for r in sheet[1:]} == {"aphid"}
    wait_for(lambda: len(ready_ids(nats_server.url, a)) >= 3, 30, "events")
    assert sorted(ready_ids(nats_server.url, a)) == sorted(str(i) for i in ids.values())
    status, metrics = w.get("/metrics")
    assert status == 200 and 'afasa_worker_jobs_total{outcome="ok",worker="report"} 3.0' in metrics
    assert w.terminate() == 0


def test_kill_9_mid_job_is_redelivered_and_ready_exactly_once(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "kill9")
    seed_tenant_data(pdb.admin_dsn, tenant, 2_000, START + timedelta(days=2))
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage_dir}"
    )
    first = start_worker(workers, cfg, tmp_path)
    with table_locked(pdb.admin_dsn):  # the kill lands while the job is processing
        rid = reports.request_report(engine, tenant, START, END, "xlsx")
        wait_for(lambda: status_of(pdb, rid) == "processing", 60, "processing")
        first.kill9()
    assert status_of(pdb, rid) == "processing"  # killed mid-job, not finished
    start_worker(workers, cfg, tmp_path)
    wait_for(lambda: status_of(pdb, rid) == "ready", 120, "ready after redelivery")
    attempts = admin_scalar(pdb.admin_dsn, "SELECT attempts FROM reports WHERE id = %s", (rid,))
    assert attempts == 2  # the message really was delivered again
    assert [p.name for p in objects(storage_dir, tenant)] == [f"{rid}.xlsx"]
    wait_for(lambda: ready_ids(nats_server.url, tenant), 30, "ready event")
    assert ready_ids(nats_server.url, tenant) == [str(rid)]
    outbox = admin_scalar(
        pdb.admin_dsn,
        "SELECT count(*) FROM event_outbox WHERE subject = %s AND payload->'data'->>'report_id' = %s",
        (events.REPORT_READY, str(rid)),
    )
    assert outbox == 1


def test_the_same_event_twice_has_one_effect(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "dup")
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage_dir}"
    )
    start_worker(workers, cfg, tmp_path)
    rid = reports.request_report(engine, tenant, START, END, "csv")
    wait_for(lambda: status_of(pdb, rid) == "ready", 60, "ready")
    original = subject_messages(nats_server.url, events.REPORT_REQUESTED)[0]
    # Same Nats-Msg-Id inside the window: JetStream drops it. A different id (as after the
    # window): delivered, and the database makes it a no-op.
    assert (
        publish_raw(
            nats_server.url,
            events.REPORT_REQUESTED,
            original.data,
            json.loads(original.data)["event_id"],
        )
        is False
    )
    assert publish_raw(nats_server.url, events.REPORT_REQUESTED, original.data, "replay-1") is True
    wait_for(
        lambda: admin_scalar(pdb.admin_dsn, "SELECT 1") and _consumer_idle(nats_server.url),
        30,
        "replay consumed",
    )
    assert status_of(pdb, rid) == "ready"
    assert admin_scalar(pdb.admin_dsn, "SELECT attempts FROM reports WHERE id = %s", (rid,)) == 1
    assert len(objects(storage_dir, tenant)) == 1
    assert ready_ids(nats_server.url, tenant) == [str(rid)]


def _consumer_idle(url: str) -> bool:
    import asyncio

    import nats

    async def check() -> bool:
        nc = await nats.connect(url)
        try:
            info = await nc.jetstream().consumer_info("AFASA", "afasa-report")
            return (
                info.num_pending == 0
                and info.num_ack_pending == 0
                and info.delivered.stream_seq >= 3
            )
        finally:
            await nc.close()

    return asyncio.run(check())


def test_a_poison_message_is_failed_then_dead_lettered_after_max_deliver(
    pdb: PlatformDb, engine, nats_server: NatsServer, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "poison")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("storage cannot live under a file")
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{blocker}/store",
        workers={"max_deliver": 3, "backoff_s": [0.1]},
    )
    start_worker(workers, cfg, tmp_path)
    rid = reports.request_report(engine, tenant, START, END, "csv")
    wait_for(lambda: status_of(pdb, rid) == "failed", 60, "failed")
    attempts, error = admin_rows(
        pdb.admin_dsn, "SELECT attempts, error FROM reports WHERE id = %s", (rid,)
    )[0]
    assert attempts == 3
    assert "not-a-directory" in error
    dlq = wait_for(
        lambda: subject_messages(nats_server.url, "afasa.dlq.report.requested"), 30, "dlq"
    )
    assert len(dlq) == 1
    assert json.loads(dlq[0].data)["data"]["report_id"] == str(rid)
    assert dlq[0].headers["Afasa-Deliveries"] == "3"
    assert "not-a-directory" in dlq[0].headers["Afasa-Error"]
    # An unparseable body is dead-lettered at once, without retries.
    publish_raw(nats_server.url, events.REPORT_REQUESTED, b"{not json", "garbage-1")
    wait_for(
        lambda: len(subject_messages(nats_server.url, "afasa.dlq.report.requested")) == 2,
        30,
        "2nd dlq",
    )
    garbage = subject_messages(nats_server.url, "afasa.dlq.report.requested")[1]
    assert garbage.data == b"{not json" and garbage.headers["Afasa-Deliveries"] == "1"


def test_the_worker_recovers_after_nats_restarts(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "restart")
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage_dir}"
    )
    w = start_worker(workers, cfg, tmp_path)
    before = reports.request_report(engine, tenant, START, END, "csv")
    wait_for(lambda: status_of(pdb, before) == "ready", 60, "ready before restart")
    nats_server.restart()
    after = [reports.request_report(engine, tenant, START, END, "csv") for _ in range(3)]
    for rid in after:
        wait_for(lambda rid=rid: status_of(pdb, rid) == "ready", 90, "ready after restart")
    assert w.proc is not None and w.proc.poll() is None
    # Ready events go through the outbox: all four arrive, none twice.
    wait_for(lambda: len(ready_ids(nats_server.url, tenant)) >= 4, 30, "events")
    assert sorted(ready_ids(nats_server.url, tenant)) == sorted(str(r) for r in [before, *after])
    assert w.wait_healthy()["nats_connected"] is True


def test_sigterm_finishes_the_job_in_flight_and_exits_0(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "sigterm")
    seed_tenant_data(pdb.admin_dsn, tenant, 2_000, START + timedelta(days=3))
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{storage_dir}",
        workers={"grace_s": 120.0},
    )
    w = start_worker(workers, cfg, tmp_path)
    with table_locked(pdb.admin_dsn):
        rid = reports.request_report(engine, tenant, START, END, "xlsx")
        wait_for(lambda: status_of(pdb, rid) == "processing", 60, "processing")
        w.send(signal.SIGTERM)
        wait_for(lambda: "stopping: SIGTERM" in w.logs(), 30, "the worker to hear SIGTERM")
        assert w.proc is not None and w.proc.poll() is None  # still finishing its job
    code = w.wait(timeout_s=150)
    assert code == 0, w.logs()[-3000:]
    assert status_of(pdb, rid) == "ready", w.logs()[-3000:]
    assert "stopping: SIGTERM" in w.logs()
    assert '"event_id": "' in w.logs() and str(tenant) in w.logs()  # structured job logs


def test_heartbeats_keep_a_job_longer_than_ack_wait_from_being_redelivered(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "heartbeat")
    seed_tenant_data(pdb.admin_dsn, tenant, 2_000, START + timedelta(days=4))
    ack_wait_s = 1.0
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{storage_dir}",
        workers={"ack_wait_s": ack_wait_s, "concurrency": 2},
    )
    start_worker(workers, cfg, tmp_path)
    # The job is made long on purpose, whatever this machine's speed: the table it reads first
    # stays locked for several ack_waits after it has started.
    with table_locked(pdb.admin_dsn):
        rid = reports.request_report(engine, tenant, START, END, "xlsx")
        wait_for(lambda: status_of(pdb, rid) == "processing", 60, "processing")
        time.sleep(4 * ack_wait_s)
    wait_for(lambda: status_of(pdb, rid) == "ready", 120, "ready")
    attempts, ran = admin_rows(
        pdb.admin_dsn,
        "SELECT attempts, finished_at - started_at FROM reports WHERE id = %s",
        (rid,),
    )[0]
    # The job outlived ack_wait several times over (the table was locked), yet was delivered
    # once.
    assert ran > timedelta(seconds=3 * ack_wait_s)
    assert attempts == 1


def test_nats_restarting_while_a_job_runs_still_ends_ready_once(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "restart-mid-job")
    seed_tenant_data(pdb.admin_dsn, tenant, 2_000, START + timedelta(days=5))
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage_dir}"
    )
    start_worker(workers, cfg, tmp_path)
    with table_locked(pdb.admin_dsn):
        rid = reports.request_report(engine, tenant, START, END, "xlsx")
        wait_for(lambda: status_of(pdb, rid) == "processing", 60, "processing")
        nats_server.restart()  # heartbeats and the ack of this job meet a restarting server
    wait_for(lambda: status_of(pdb, rid) == "ready", 120, "ready")
    wait_for(lambda: ready_ids(nats_server.url, tenant), 30, "ready event")
    later = reports.request_report(engine, tenant, START, START + timedelta(days=1), "csv")
    wait_for(lambda: status_of(pdb, later) == "ready", 60, "a later job after the restart")
    wait_for(lambda: len(ready_ids(nats_server.url, tenant)) >= 2, 30, "events")
    assert sorted(ready_ids(nats_server.url, tenant)) == sorted([str(rid), str(later)])
    assert len(objects(storage_dir, tenant)) == 2


def test_concurrency_runs_that_many_jobs_at_once(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "concurrency")
    seed_tenant_data(pdb.admin_dsn, tenant, 2_000, START + timedelta(days=6))
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage_dir}"
    )
    w = WorkerProcess(cfg, "report", tmp_path / "conc.log", ["--concurrency", "3"]).start()
    workers.append(w)
    w.wait_healthy()
    in_flight = lambda: admin_scalar(  # noqa: E731
        pdb.admin_dsn,
        "SELECT count(*) FROM reports WHERE tenant_id = %s AND status = 'processing'",
        (tenant,),
    )
    with table_locked(pdb.admin_dsn):  # jobs stay in flight until released
        ids = [reports.request_report(engine, tenant, START, END, "xlsx") for _ in range(4)]
        wait_for(lambda: in_flight() == 3, 60, "three jobs processing at once")
        time.sleep(1)  # a fourth job, were it started, would show up by now
        assert in_flight() == 3
    for rid in ids:
        wait_for(lambda rid=rid: status_of(pdb, rid) == "ready", 180, "ready")
    assert (
        max(
            admin_scalar(
                pdb.admin_dsn, "SELECT max(attempts) FROM reports WHERE tenant_id = %s", (tenant,)
            ),
            0,
        )
        == 1
    )


def test_a_job_whose_last_delivery_died_is_failed_from_the_servers_advisory(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "exhausted")
    seed_tenant_data(pdb.admin_dsn, tenant, 60_000, START + timedelta(days=7))
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{storage_dir}",
        workers={"max_deliver": 1, "ack_wait_s": 3.0},
    )
    first = start_worker(workers, cfg, tmp_path)
    rid = reports.request_report(engine, tenant, START, END, "xlsx")
    wait_for(lambda: status_of(pdb, rid) == "processing", 60, "processing")
    first.kill9()  # the only delivery dies with its worker: the server will not redeliver
    start_worker(workers, cfg, tmp_path)
    wait_for(lambda: status_of(pdb, rid) == "failed", 60, "failed from the advisory")
    error = admin_scalar(pdb.admin_dsn, "SELECT error FROM reports WHERE id = %s", (rid,))
    assert "no ack after 1 deliveries" in error
    dlq = wait_for(
        lambda: subject_messages(nats_server.url, "afasa.dlq.report.requested"), 30, "dlq"
    )
    assert json.loads(dlq[0].data)["data"]["report_id"] == str(rid)


def test_a_worker_started_before_nats_waits_for_it(
    pdb: PlatformDb, engine, nats_server: NatsServer, storage_dir: Path, tmp_path: Path, workers
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "nats-late")
    nats_server.stop()
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage_dir}"
    )
    w = WorkerProcess(cfg, "report", tmp_path / "late.log").start()
    workers.append(w)
    wait_for(lambda: "Connect call failed" in w.logs(), 30, "the worker to report NATS missing")
    assert w.get("/healthz")[0] == 503  # not healthy without NATS, but alive
    other = WorkerProcess(cfg, "commands", tmp_path / "late-commands.log").start()
    workers.append(other)
    wait_for(lambda: "Connect call failed" in other.logs(), 30, "the second worker waiting")
    assert other.terminate(timeout_s=30) == 0  # a signal still stops a worker waiting for NATS
    rid = reports.request_report(engine, tenant, START, END, "csv")
    nats_server.start()
    w.wait_healthy()
    wait_for(lambda: status_of(pdb, rid) == "ready", 60, "ready once NATS is up")
