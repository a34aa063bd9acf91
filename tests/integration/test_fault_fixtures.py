"""The fault-injection fixtures do what the outage tests rely on: a private PostgreSQL that
stops, crashes, hangs and comes back; a private NATS that is killed and keeps its stream; an
S3 server that restarts on the same endpoint with its objects."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.pg_cluster import pg_cluster
from tests.support.s3_server import start_s3
from tests.support.services import NatsServer, free_port


def test_private_postgres_stops_crashes_hangs_and_comes_back() -> None:
    with pg_cluster() as pg:
        held = psycopg.connect(pg.admin_dsn, autocommit=True)
        held.execute("CREATE TABLE t (x int)")
        pg.hang()
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            psycopg.connect(pg.admin_dsn, connect_timeout=2)
        pg.resume()
        held.execute("INSERT INTO t VALUES (1)")  # the open session survived the hang
        pg.kill9()
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.admin_dsn, connect_timeout=2)
        pg.start()  # crash recovery
        pg.stop()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.admin_dsn, connect_timeout=2)
        pg.start()
        with psycopg.connect(pg.admin_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
        assert pg.port != 5432


def test_private_nats_keeps_its_stream_through_kill_9(tmp_path: Path) -> None:
    import nats

    server = NatsServer(free_port(), tmp_path / "js")
    server.start()

    async def publish() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="FIXTURE", subjects=["fixture.>"])
        await js.publish("fixture.a", b"1")
        await nc.close()

    async def count() -> int:
        nc = await nats.connect(server.url)
        info = await nc.jetstream().stream_info("FIXTURE")
        await nc.close()
        return int(info.state.messages)

    try:
        asyncio.run(publish())
        server.kill9()
        server.start()
        assert asyncio.run(count()) == 1
    finally:
        server.stop()


def test_s3_server_restarts_on_the_same_endpoint_with_its_objects(tmp_path: Path) -> None:
    from minio import Minio

    s3 = start_s3(tmp_path / "s3")
    try:
        endpoint = s3.endpoint
        client = Minio(f"127.0.0.1:{s3.port}", s3.access_key, s3.secret_key, secure=False)
        client.make_bucket("fixture")
        client.put_object("fixture", "k", io.BytesIO(b"v"), 1)
        s3.kill9()
        started = time.monotonic()
        with pytest.raises(Exception, match=r"(?i)refused|max retries"):
            client.stat_object("fixture", "k")
        assert time.monotonic() - started < 60
        s3.start()
        assert s3.endpoint == endpoint
        assert client.get_object("fixture", "k").read() == b"v"
    finally:
        s3.stop()
