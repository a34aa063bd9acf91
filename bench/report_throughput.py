"""Benchmark 2: csv report requests end to end (request_report -> outbox -> JetStream -> worker
-> file in storage -> ready) against a raw JetStream consume-and-ack loop over as many
messages, on a private nats-server and a fresh database.

    python bench/report_throughput.py           # 100 requests
    python bench/report_throughput.py --full    # 500 requests (the issue's size)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _workers_common as common  # noqa: F401  (puts the repo root on sys.path)


async def raw_loop(url: str, n: int) -> float:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCH", subjects=["bench.>"])
    for i in range(n):
        await js.publish("bench.msg", f'{{"i":{i}}}'.encode())
    await js.add_consumer(
        "BENCH", ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT)
    )
    sub = await js.pull_subscribe_bind(durable="raw", stream="BENCH")
    done = 0
    start = time.perf_counter()
    while done < n:
        for msg in await sub.fetch(min(50, n - done), timeout=5):
            await msg.ack()
            done += 1
    elapsed = time.perf_counter() - start
    await nc.close()
    return elapsed


async def ours(
    url: str, app_dsn: str, admin_dsn: str, n: int, concurrency: int, work: Path
) -> float:
    import psycopg

    from afasa_ops.infra.postgres import make_engine
    from afasa_ops.platform import reports
    from afasa_ops.platform.storage import FileStorage
    from afasa_ops.workers import report
    from afasa_ops.workers.runtime import RuntimeOptions
    from tests.support.platform_db import add_tenant
    from tests.support.seed import seed_tenant_data

    start_at = datetime(2026, 11, 1, tzinfo=UTC)
    tenant = add_tenant(admin_dsn, "bench")
    seed_tenant_data(admin_dsn, tenant, 100, start_at)
    engine = make_engine(app_dsn, pool_size=concurrency + 4)
    opts = RuntimeOptions(
        nats_url=url,
        concurrency=concurrency,
        relay_interval_s=0.02,
        metrics_port=None,
        ack_wait_s=30,
        max_deliver=3,
    )
    runtime = report.build(opts, engine, FileStorage(work / "storage"), work)
    task = asyncio.create_task(runtime.run())

    def request_all() -> None:
        for _ in range(n):
            reports.request_report(engine, tenant, start_at, start_at + timedelta(days=1), "csv")

    def ready() -> int:
        with psycopg.connect(admin_dsn) as conn:
            row = conn.execute("SELECT count(*) FROM reports WHERE status = 'ready'").fetchone()
            return int(row[0]) if row else 0

    await asyncio.sleep(1.0)  # connected, consumer created
    start = time.perf_counter()
    await asyncio.to_thread(request_all)
    while await asyncio.to_thread(ready) < n:
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - start
    runtime.request_stop("benchmark done")
    await task
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="500 requests")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    n = args.n or (500 if args.full else 100)
    import logging

    logging.getLogger("afasa_ops").setLevel(logging.ERROR)  # keep the output to the numbers

    from tests.support.platform_db import platform_database
    from tests.support.services import NatsServer, free_port

    with tempfile.TemporaryDirectory() as tmp, platform_database() as db:
        work = Path(tmp)
        server = NatsServer(free_port(), work / "js")
        server.start()
        try:
            raw_s = asyncio.run(raw_loop(server.url, n))
            ours_s = asyncio.run(
                ours(server.url, db.app_dsn, db.admin_dsn, n, args.concurrency, work)
            )
        finally:
            server.stop()
    ours_rate, raw_rate = n / ours_s, n / raw_s
    print(
        f"{n} csv reports end to end: {ours_s:.2f} s = {ours_rate:.1f} reports/s "
        f"(concurrency {args.concurrency})"
    )
    print(f"{n} raw JetStream consume+ack: {raw_s:.3f} s = {raw_rate:.1f} msgs/s")
    print(
        f"rates side by side: ours {ours_rate:.1f}/s  raw {raw_rate:.1f}/s  "
        f"ratio raw/ours {raw_rate / ours_rate:.1f}x"
    )


if __name__ == "__main__":
    main()
