"""Outages are weather: the report worker rides out PostgreSQL and storage outages without
spending deliveries, keeps decided jobs decided, stops within its grace and reconciles rows
the stream lost. Faults are injected into private servers (tests/support/pg_cluster.py, a
private nats-server, a private SeaweedFS), never the machine's shared ones.

Each scenario ends by checking the end state: every report ready (or failed with a reason)
exactly once, no row stuck, one object and one ready event per report, no dead letter."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from afasa_ops.infra.postgres import make_engine
from afasa_ops.platform import events, reports
from tests.support.pg_cluster import PgCluster, pg_cluster
from tests.support.platform_db import PlatformDb, add_tenant, platform_database
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
# Short on purpose: the outages below outlast the whole retry budget several times over.
FAST = {
    "ack_wait_s": 1.0,
    "max_deliver": 3,
    "backoff_s": [0.2, 0.5],
    "grace_s": 5.0,
    "concurrency": 2,
    "reconcile_interval_s": 1.0,
    "reconcile_after_s": 3.0,
}


@pytest.fixture
def private_db() -> Iterator[tuple[PgCluster, PlatformDb]]:
    with pg_cluster() as pg, platform_database("afasa_out", server_dsn=pg.admin_dsn) as db:
        yield pg, db


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


def start_worker(
    started: list[WorkerProcess], cfg: Path, tmp_path: Path, *, healthy: bool = True
) -> WorkerProcess:
    w = WorkerProcess(cfg, "report", tmp_path / f"report-{len(started)}.log").start()
    started.append(w)
    if healthy:
        w.wait_healthy()
    return w


def request(db: PlatformDb, tenant: uuid.UUID, n: int, fmt: str = "csv") -> list[uuid.UUID]:
    engine = make_engine(db.app_dsn)
    try:
        return [reports.request_report(engine, tenant, START, END, fmt) for _ in range(n)]
    finally:
        engine.dispose()


def statuses(db: PlatformDb, tenant: uuid.UUID) -> dict[str, int]:
    rows = admin_rows(
        db.admin_dsn,
        "SELECT status, count(*) FROM reports WHERE tenant_id = %s GROUP BY status",
        (tenant,),
    )
    return {str(s): int(n) for s, n in rows}


def all_ready(db: PlatformDb, tenant: uuid.UUID, n: int) -> bool:
    return statuses(db, tenant) == {"ready": n}


def ready_events(url: str, tenant: uuid.UUID) -> list[str]:
    found = [json.loads(m.data) for m in subject_messages(url, events.REPORT_READY)]
    return [e["data"]["report_id"] for e in found if e["tenant_id"] == str(tenant)]


def assert_ready_exactly_once(
    db: PlatformDb, nats_url: str, tenant: uuid.UUID, ids: list[uuid.UUID], keys: list[str]
) -> None:
    """Ready once: one ready event each on the stream, one object each, nothing dead."""
    wait_for(lambda: len(ready_events(nats_url, tenant)) >= len(ids), 60, "ready events")
    assert sorted(ready_events(nats_url, tenant)) == sorted(str(i) for i in ids)
    assert sorted(keys) == sorted(f"tenant/{tenant}/reports/{i}.csv" for i in ids)
    assert subject_messages(nats_url, "afasa.dlq.report.requested") == []
    outbox = admin_scalar(
        db.admin_dsn,
        "SELECT count(*) FROM event_outbox WHERE subject = %s AND tenant_id = %s",
        (events.REPORT_READY, tenant),
    )
    assert outbox == len(ids)


def file_keys(storage: Path, tenant: uuid.UUID) -> list[str]:
    base = storage / "tenant" / str(tenant) / "reports"
    if not base.exists():
        return []
    return sorted(p.relative_to(storage).as_posix() for p in base.iterdir() if p.is_file())


def lines(w: WorkerProcess, text: str) -> list[dict[str, Any]]:
    out = []
    for line in w.logs().splitlines():
        if text in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line})
    return out


def consumer_state(url: str) -> tuple[int, int]:
    import asyncio

    import nats

    async def go() -> tuple[int, int]:
        nc = await nats.connect(url)
        try:
            info = await nc.jetstream().consumer_info("AFASA", "afasa-report")
            return int(info.num_pending or 0), int(info.num_ack_pending or 0)
        finally:
            await nc.close()

    return asyncio.run(go())


def test_a_database_outage_longer_than_the_retry_budget_loses_no_report(
    private_db: tuple[PgCluster, PlatformDb],
    nats_server: NatsServer,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    pg, db = private_db
    tenant = add_tenant(db.admin_dsn, "db-outage")
    seed_tenant_data(db.admin_dsn, tenant, 200, START + timedelta(days=1))
    storage = tmp_path / "storage"
    cfg = write_config(
        tmp_path / "afasa-ops.toml", db, nats_server.url, storage_url=f"file://{storage}",
        workers=FAST,
    )  # fmt: skip
    w = start_worker(workers, cfg, tmp_path)
    with table_locked(db.admin_dsn):  # two jobs are mid-render when the database goes
        ids = request(db, tenant, 8)
        wait_for(lambda: statuses(db, tenant).get("processing") == 2, 60, "two jobs in flight")
        pg.stop()
    # Outage: ten times the retry budget (ack_wait x max_deliver plus the backoffs).
    time.sleep(10)
    assert w.proc is not None and w.proc.poll() is None
    pg.start()
    wait_for(lambda: all_ready(db, tenant, 8), 120, f"all ready: {w.logs()[-2000:]}")
    assert_ready_exactly_once(db, nats_server.url, tenant, ids, file_keys(storage, tenant))
    # The outage cost no delivery: no job was retried or failed for it.
    assert (
        admin_scalar(
            db.admin_dsn, "SELECT max(attempts) FROM reports WHERE tenant_id = %s", (tenant,)
        )
        == 1
    )
    assert lines(w, "job failed") == []
    # One line when it went, one when it came back; the relay said nothing of its own.
    assert len(lines(w, "database unavailable")) == 1, w.logs()[-3000:]
    assert len(lines(w, "database available again")) == 1, w.logs()[-3000:]
    assert lines(w, "outbox relay") == []
    assert "Traceback" not in w.logs()


def test_sigterm_during_a_database_hang_exits_within_grace_and_loses_nothing(
    private_db: tuple[PgCluster, PlatformDb],
    nats_server: NatsServer,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    pg, db = private_db
    tenant = add_tenant(db.admin_dsn, "db-hang")
    storage = tmp_path / "storage"
    cfg = write_config(
        tmp_path / "afasa-ops.toml", db, nats_server.url, storage_url=f"file://{storage}",
        workers={**FAST, "grace_s": 2.0},
    )  # fmt: skip
    w = start_worker(workers, cfg, tmp_path)
    with table_locked(db.admin_dsn) as release:
        ids = request(db, tenant, 4)
        wait_for(lambda: statuses(db, tenant).get("processing") == 2, 60, "two jobs in flight")
        pg.hang()  # every backend and the postmaster stop answering, connections stay open
        try:
            w.send(signal.SIGTERM)
            code = w.wait(timeout_s=30)  # grace 2 s; generous, but not the hang's length
        finally:
            pg.resume()
        release()
    assert code == 0, w.logs()[-3000:]
    assert lines(w, "abandoning 2 job(s)"), w.logs()[-3000:]
    # The stream kept every job (two handed back, two never fetched): a new worker ends them.
    start_worker(workers, cfg, tmp_path)
    wait_for(lambda: all_ready(db, tenant, 4), 120, "all ready after the hang")
    assert_ready_exactly_once(db, nats_server.url, tenant, ids, file_keys(storage, tenant))


def test_a_storage_outage_holds_jobs_and_records_no_raw_client_error(
    private_db: tuple[PgCluster, PlatformDb],
    nats_server: NatsServer,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    from tests.support.s3_server import start_s3

    _, db = private_db
    tenant = add_tenant(db.admin_dsn, "s3-outage")
    s3 = start_s3(tmp_path / "s3")
    try:
        cfg = write_config(
            tmp_path / "afasa-ops.toml", db, nats_server.url, storage_url="s3://outage-reports",
            workers=FAST,
            storage_lines=[
                f'endpoint = "{s3.endpoint}"',
                'access_key = { env = "T_S3_ACCESS" }',
                'secret_key = { env = "T_S3_SECRET" }',
            ],
        )  # fmt: skip
        w = WorkerProcess(
            cfg, "report", tmp_path / "report-s3.log",
            env={"T_S3_ACCESS": s3.access_key, "T_S3_SECRET": s3.secret_key},
        ).start()  # fmt: skip
        workers.append(w)
        w.wait_healthy()
        first = request(db, tenant, 2)
        wait_for(lambda: all_ready(db, tenant, 2), 60, "ready before the outage")
        s3.kill9()
        later = request(db, tenant, 4)
        wait_for(lambda: lines(w, "storage unavailable"), 60, "the worker to see the outage")
        time.sleep(4)  # longer than the retry budget
        assert statuses(db, tenant).get("failed") is None
        s3.start()
        wait_for(lambda: all_ready(db, tenant, 6), 180, f"all ready: {w.logs()[-2000:]}")
        from afasa_ops.platform.storage import S3Storage

        store = S3Storage("outage-reports", s3.endpoint, s3.access_key, s3.secret_key)
        keys = store.list_keys(f"tenant/{tenant}/")
        assert_ready_exactly_once(db, nats_server.url, tenant, [*first, *later], keys)
        outage = lines(w, "storage unavailable")[0]["msg"]
        assert "S3 put s3://outage-reports/tenant/" in outage and "connection refused" in outage
        assert "MaxRetryError" not in w.logs() and "HTTPConnectionPool" not in w.logs()
    finally:
        s3.stop()


def test_s3_errors_are_one_line_naming_the_object() -> None:
    from afasa_ops.platform.availability import STORAGE, Unavailable
    from afasa_ops.platform.storage import S3Storage
    from tests.support.services import free_port

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = S3Storage("reports", closed, "AK", "SK")
    src = Path(__file__)
    with pytest.raises(Unavailable) as caught:
        store.put_file("tenant/t/reports/r.csv", src, "text/csv")
    assert caught.value.dependency == STORAGE
    assert str(caught.value) == "S3 put s3://reports/tenant/t/reports/r.csv: connection refused"


def test_sigterm_abandons_jobs_longer_than_grace_and_hands_them_back(
    pdb: PlatformDb, nats_server: NatsServer, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    tenant = add_tenant(pdb.admin_dsn, "grace")
    storage = tmp_path / "storage"
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage}",
        workers={**FAST, "grace_s": 2.0, "ack_wait_s": 120.0},
    )  # fmt: skip
    w = start_worker(workers, cfg, tmp_path)
    with table_locked(pdb.admin_dsn) as release:
        ids = request(pdb, tenant, 2)
        wait_for(lambda: statuses(pdb, tenant).get("processing") == 2, 60, "two jobs in flight")
        w.send(signal.SIGTERM)
        code = w.wait(timeout_s=30)  # the lock is still held: only the grace ends the jobs
        # Abandoned cleanly: rows back to queued, nothing uploaded after the stop.
        assert code == 0, w.logs()[-3000:]
        assert statuses(pdb, tenant) == {"queued": 2}
        assert file_keys(storage, tenant) == []
        release()
    assert lines(w, "abandoning 2 job(s)")
    start_worker(workers, cfg, tmp_path)
    # Handed back, not left to ack_wait (120 s): the next worker has them at once.
    wait_for(lambda: all_ready(pdb, tenant, 2), 60, "ready on the next worker")
    assert_ready_exactly_once(pdb, nats_server.url, tenant, ids, file_keys(storage, tenant))


def test_a_second_sigterm_exits_at_once(
    pdb: PlatformDb, nats_server: NatsServer, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    tenant = add_tenant(pdb.admin_dsn, "second-signal")
    storage = tmp_path / "storage"
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage}",
        workers={**FAST, "grace_s": 300.0, "ack_wait_s": 2.0},
    )  # fmt: skip
    w = start_worker(workers, cfg, tmp_path)
    with table_locked(pdb.admin_dsn) as release:
        ids = request(pdb, tenant, 1)
        wait_for(lambda: statuses(pdb, tenant).get("processing") == 1, 60, "in flight")
        w.send(signal.SIGTERM)
        wait_for(lambda: lines(w, "stopping: SIGTERM"), 30, "the first SIGTERM heard")
        w.send(signal.SIGTERM)
        code = w.wait(timeout_s=20)  # not the 300 s grace
        release()
    assert code == 128 + signal.SIGTERM, w.logs()[-3000:]
    assert lines(w, "second SIGTERM: exiting now")
    start_worker(workers, cfg, tmp_path)  # the message comes back after ack_wait
    wait_for(lambda: all_ready(pdb, tenant, 1), 60, "ready on the next worker")
    assert_ready_exactly_once(pdb, nats_server.url, tenant, ids, file_keys(storage, tenant))


def test_events_written_during_the_grace_are_relayed_before_exit(
    pdb: PlatformDb, nats_server: NatsServer, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    tenant = add_tenant(pdb.admin_dsn, "last-events")
    storage = tmp_path / "storage"
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage}",
        workers={**FAST, "grace_s": 60.0, "ack_wait_s": 5.0},
    )  # fmt: skip
    w = start_worker(workers, cfg, tmp_path)
    with table_locked(pdb.admin_dsn):
        ids = request(pdb, tenant, 1)
        wait_for(lambda: statuses(pdb, tenant).get("processing") == 1, 60, "in flight")
        w.send(signal.SIGTERM)
        wait_for(lambda: lines(w, "stopping: SIGTERM"), 30, "SIGTERM heard")
    assert w.wait(timeout_s=60) == 0, w.logs()[-3000:]
    assert statuses(pdb, tenant) == {"ready": 1}
    # No worker runs any more: the ready event reached the stream before the exit.
    assert ready_events(nats_server.url, tenant) == [str(ids[0])]


def test_dead_letters_stay_dead_after_max_deliver_is_raised_and_a_replay(
    pdb: PlatformDb, nats_server: NatsServer, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    tenant = add_tenant(pdb.admin_dsn, "dead-stays-dead")
    seed_tenant_data(pdb.admin_dsn, tenant, 50, START + timedelta(days=2))
    storage = tmp_path / "storage"
    once = {**FAST, "max_deliver": 1, "ack_wait_s": 2.0, "reconcile_interval_s": 0}
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage}",
        workers=once,
    )  # fmt: skip
    first = start_worker(workers, cfg, tmp_path)
    with table_locked(pdb.admin_dsn):
        (rid,) = request(pdb, tenant, 1)
        wait_for(lambda: statuses(pdb, tenant).get("processing") == 1, 60, "in flight")
        first.kill9()  # its only delivery dies with it: the server gives up on the message
        second = start_worker(workers, cfg, tmp_path)
        wait_for(lambda: statuses(pdb, tenant) == {"failed": 1}, 60, "failed from the advisory")
    second.terminate()
    # The operator raises max_deliver: the server may deliver the given-up message again.
    write_config(
        cfg, pdb, nats_server.url, storage_url=f"file://{storage}",
        workers={**once, "max_deliver": 5},
    )  # fmt: skip
    third = start_worker(workers, cfg, tmp_path)
    wait_for(lambda: consumer_state(nats_server.url) == (0, 0), 60, "the consumer settled")
    ignored = len(lines(third, "already failed for good"))
    # ... and after a NATS restart, the same request replayed under a new message id.
    nats_server.restart()
    original = subject_messages(nats_server.url, events.REPORT_REQUESTED)[0]
    assert publish_raw(nats_server.url, events.REPORT_REQUESTED, original.data, "replay-1")
    wait_for(
        lambda: len(lines(third, "already failed for good")) > ignored, 60, "the replay ignored"
    )
    wait_for(lambda: consumer_state(nats_server.url) == (0, 0), 60, "the consumer settled")
    assert statuses(pdb, tenant) == {"failed": 1}
    assert ready_events(nats_server.url, tenant) == []
    assert file_keys(storage, tenant) == []
    assert len(subject_messages(nats_server.url, "afasa.dlq.report.requested")) == 1
    error = admin_scalar(pdb.admin_dsn, "SELECT error FROM reports WHERE id = %s", (rid,))
    assert "no ack after 1 deliveries" in error


def test_reconciliation_reannounces_or_fails_rows_the_stream_lost(
    pdb: PlatformDb, nats_server: NatsServer, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    tenant = add_tenant(pdb.admin_dsn, "reconcile")
    storage = tmp_path / "storage"
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{storage}",
        workers={**FAST, "reconcile_after_s": 1.0, "reconcile_interval_s": 0.5},
    )  # fmt: skip
    w = start_worker(workers, cfg, tmp_path)
    lost, spent, done = request(pdb, tenant, 3)
    wait_for(lambda: all_ready(pdb, tenant, 3), 60, "ready")
    # Two rows as an outage used to leave them: the final write never happened, so they wait
    # queued while the stream holds nothing for them. One had attempts left, one had none.
    admin_rows(
        pdb.admin_dsn,
        "UPDATE reports SET status = 'queued', s3_key = NULL, attempts = "
        "CASE WHEN id = %s THEN 3 ELSE 1 END, error = CASE WHEN id = %s THEN 'boom' END, "
        "updated_at = now() - interval '1 hour' WHERE id IN (%s, %s) RETURNING id",
        (spent, spent, lost, spent),
    )
    wait_for(lambda: statuses(pdb, tenant) == {"ready": 2, "failed": 1}, 60, w.logs()[-2000:])
    assert admin_scalar(pdb.admin_dsn, "SELECT status FROM reports WHERE id = %s", (lost,)) == (
        "ready"
    )
    error = admin_scalar(pdb.admin_dsn, "SELECT error FROM reports WHERE id = %s", (spent,))
    assert error.startswith("given up by reconciliation") and "last error: boom" in error
    assert admin_scalar(pdb.admin_dsn, "SELECT status FROM reports WHERE id = %s", (done,)) == (
        "ready"
    )
    announced = admin_scalar(
        pdb.admin_dsn,
        "SELECT count(*) FROM event_outbox WHERE subject = %s "
        "AND payload->'data'->>'report_id' = %s",
        (events.REPORT_REQUESTED, str(lost)),
    )
    assert announced == 2  # the request, and one re-announcement
    time.sleep(2)  # more sweeps: a decided job is never announced again
    assert (
        admin_scalar(
            pdb.admin_dsn,
            "SELECT count(*) FROM event_outbox WHERE subject = %s AND tenant_id = %s",
            (events.REPORT_REQUESTED, tenant),
        )
        == 4
    )


def test_a_job_given_up_during_a_database_outage_is_failed_when_it_returns(
    private_db: tuple[PgCluster, PlatformDb],
    nats_server: NatsServer,
    tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    pg, db = private_db
    tenant = add_tenant(db.admin_dsn, "given-up-in-outage")
    storage = tmp_path / "storage"
    once = {**FAST, "max_deliver": 1, "ack_wait_s": 2.0, "reconcile_interval_s": 0}
    cfg = write_config(
        tmp_path / "afasa-ops.toml", db, nats_server.url, storage_url=f"file://{storage}",
        workers=once,
    )  # fmt: skip
    first = start_worker(workers, cfg, tmp_path)
    with table_locked(db.admin_dsn):
        (rid,) = request(db, tenant, 1)
        wait_for(lambda: statuses(db, tenant).get("processing") == 1, 60, "in flight")
        first.kill9()  # its only delivery dies with it
        pg.stop()
    # The message runs out of deliveries while the database cannot record a final state.
    second = start_worker(workers, cfg, tmp_path)
    time.sleep(4)  # past ack_wait: the server is done with the message
    pg.start()
    # The final state is written once the database is back, then the dead letter goes out.
    wait_for(lambda: statuses(db, tenant) == {"failed": 1}, 60, f"failed: {second.logs()[-2000:]}")
    error = admin_scalar(db.admin_dsn, "SELECT error FROM reports WHERE id = %s", (rid,))
    assert "no ack after 1 deliveries" in error
    dlq = wait_for(
        lambda: subject_messages(nats_server.url, "afasa.dlq.report.requested"), 30, "dlq"
    )
    assert len(dlq) == 1 and json.loads(dlq[0].data)["data"]["report_id"] == str(rid)
    assert len(lines(second, "database unavailable")) == 1
