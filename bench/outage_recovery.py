"""Benchmark: how much a PostgreSQL outage costs the report worker, side by side in one run.

A real `afasa-ops worker report` process on a private PostgreSQL cluster and a private
nats-server drains N queued csv reports twice: once undisturbed, once with the database
stopped for OUTAGE seconds after a quarter of them are ready. It prints both drain times, the
time to drain after the database came back, what the outage added, and the lost and duplicated
counts (a report not ready, a report with more than one ready event or object).

Targets: the outage adds no more than its own length plus 10 s; lost 0, duplicated 0.

    python bench/outage_recovery.py                 # 200 reports, a 60 s outage
    python bench/outage_recovery.py -n 50 --outage-s 15
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _workers_common as common  # noqa: F401  (puts the repo root on sys.path)

START = datetime(2026, 11, 1, tzinfo=UTC)


def ready_count(admin_dsn: str, tenant: uuid.UUID) -> int | None:
    """Ready reports of the tenant, or None while the database is down."""
    import psycopg

    try:
        with psycopg.connect(admin_dsn, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM reports WHERE tenant_id = %s AND status = 'ready'",
                (tenant,),
            ).fetchone()
    except psycopg.OperationalError:
        return None
    return int(row[0]) if row else 0


def request(app_dsn: str, tenant: uuid.UUID, n: int) -> list[uuid.UUID]:
    from afasa_ops.infra.postgres import make_engine
    from afasa_ops.platform import reports

    engine = make_engine(app_dsn)
    try:
        return [
            reports.request_report(engine, tenant, START, START + timedelta(days=1), "csv")
            for _ in range(n)
        ]
    finally:
        engine.dispose()


def wait_ready(admin_dsn: str, tenant: uuid.UUID, n: int, deadline_s: float = 900) -> float:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        if ready_count(admin_dsn, tenant) == n:
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit(f"not all {n} reports ready within {deadline_s:.0f}s")


def lost_and_duplicated(
    admin_dsn: str, nats_url: str, storage: Path, tenant: uuid.UUID, ids: list[uuid.UUID]
) -> tuple[int, int]:
    from afasa_ops.platform import events
    from tests.support.workers import admin_rows, subject_messages

    def events_of_tenant() -> dict[str, int]:
        seen: dict[str, int] = {}
        for msg in subject_messages(nats_url, events.REPORT_READY):
            doc = json.loads(msg.data)
            if doc["tenant_id"] == str(tenant):
                rid = doc["data"]["report_id"]
                seen[rid] = seen.get(rid, 0) + 1
        return seen

    deadline = time.monotonic() + 60  # the last ready events may still be in the outbox
    seen = events_of_tenant()
    while len(seen) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = events_of_tenant()
    ready = {
        str(r[0])
        for r in admin_rows(
            admin_dsn, "SELECT id FROM reports WHERE tenant_id = %s AND status = 'ready'", (tenant,)
        )
    }
    lost = sum(1 for i in ids if str(i) not in ready)
    objects = list((storage / "tenant" / str(tenant) / "reports").glob("*"))
    dup_events = sum(1 for c in seen.values() if c > 1)
    missing_events = sum(1 for i in ids if str(i) not in seen)
    dup_objects = len(objects) - len({p.name for p in objects})
    return lost + missing_events, dup_events + dup_objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="queued reports per run")
    parser.add_argument("--outage-s", type=float, default=60.0, help="database outage length")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    from tests.support.pg_cluster import pg_cluster
    from tests.support.platform_db import add_tenant, platform_database
    from tests.support.seed import seed_tenant_data
    from tests.support.services import NatsServer, free_port
    from tests.support.workers import WorkerProcess, write_config

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        nats = NatsServer(free_port(), work / "js")
        nats.start()
        worker: WorkerProcess | None = None
        try:
            with pg_cluster() as pg, platform_database("bench_out", pg.admin_dsn) as db:
                storage = work / "storage"
                cfg = write_config(
                    work / "afasa-ops.toml", db, nats.url, storage_url=f"file://{storage}",
                    workers={"ack_wait_s": 30.0, "max_deliver": 5, "backoff_s": [1.0, 5.0],
                             "grace_s": 10.0, "concurrency": args.concurrency},
                )  # fmt: skip
                worker = WorkerProcess(cfg, "report", work / "worker.log").start()
                worker.wait_healthy()
                results = {}
                for label, outage in (("no outage", 0.0), ("outage", args.outage_s)):
                    tenant = add_tenant(db.admin_dsn, label)
                    seed_tenant_data(db.admin_dsn, tenant, 50, START)
                    t0 = time.monotonic()
                    ids = request(db.app_dsn, tenant, args.n)
                    recovered = t0
                    if outage:
                        while (ready_count(db.admin_dsn, tenant) or 0) < args.n // 4:
                            time.sleep(0.05)
                        pg.stop()
                        time.sleep(outage)
                        pg.start()
                        recovered = time.monotonic()
                    done = wait_ready(db.admin_dsn, tenant, args.n)
                    lost, dup = lost_and_duplicated(db.admin_dsn, nats.url, storage, tenant, ids)
                    results[label] = (done - t0, done - recovered, lost, dup)
                worker.terminate()
        finally:
            if worker is not None:
                worker.stop()
            nats.stop()

    calm, storm = results["no outage"], results["outage"]
    added = storm[0] - calm[0]
    print(f"{args.n} queued csv reports, concurrency {args.concurrency}, private PostgreSQL")
    print(
        f"  no outage:            drained in {calm[0]:6.1f} s; lost {calm[2]}, duplicated {calm[3]}"
    )
    print(
        f"  {args.outage_s:.0f} s DB outage:      drained in {storm[0]:6.1f} s "
        f"({storm[1]:.1f} s after recovery); lost {storm[2]}, duplicated {storm[3]}"
    )
    print(
        f"the outage added {added:.1f} s for {args.outage_s:.0f} s down "
        f"(target <= {args.outage_s + 10:.0f} s): {'ok' if added <= args.outage_s + 10 else 'MISSED'};"
        f" ratio with/without outage {storm[0] / calm[0]:.2f}"
    )


if __name__ == "__main__":
    main()
