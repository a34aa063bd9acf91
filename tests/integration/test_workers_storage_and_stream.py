"""Storage on a real S3 server (SeaweedFS verifies signatures) and the JetStream stream and
consumer converging without clobbering."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops.config import StorageSection
from afasa_ops.errors import DriverError
from afasa_ops.infra import nats as natsdrv
from afasa_ops.platform.storage import FileStorage, S3Storage, open_storage
from tests.support.s3_server import S3Server, start_s3
from tests.support.services import NatsServer


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


def test_s3_storage_creates_the_bucket_and_overwrites_one_object(
    s3: S3Server, tmp_path: Path
) -> None:
    storage = S3Storage("afasa-reports", s3.endpoint, s3.access_key, s3.secret_key)
    src = tmp_path / "r.csv"
    src.write_text("a,b\n1,2\n")
    key = "tenant/t1/reports/r1.csv"
    storage.put_file(key, src, "text/csv")
    src.write_text("a,b\n3,4\n")
    storage.put_file(key, src, "text/csv")  # a redelivered job writes the same key again
    assert storage.list_keys("tenant/t1/") == [key]
    assert storage.get_bytes(key) == b"a,b\n3,4\n"
    assert storage.exists(key) and not storage.exists("tenant/t1/reports/other.csv")


def test_s3_with_a_wrong_secret_is_refused(s3: S3Server, tmp_path: Path) -> None:
    src = tmp_path / "r.csv"
    src.write_text("x")
    wrong = S3Storage("afasa-reports", s3.endpoint, s3.access_key, "not-the-secret")
    with pytest.raises(DriverError, match=r"SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
        wrong.put_file("tenant/t1/reports/x.csv", src, "text/csv")


def test_open_storage_reads_the_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = open_storage(StorageSection(url="file://rel/dir"), tmp_path)
    assert isinstance(fs, FileStorage) and fs.root == tmp_path / "rel" / "dir"
    with pytest.raises(Exception, match="s3:// needs endpoint, access_key and secret_key"):
        open_storage(StorageSection(url="s3://bucket"), tmp_path)
    with pytest.raises(Exception, match="unsupported scheme"):
        open_storage(StorageSection(url="ftp://x"), tmp_path)


def test_stream_is_created_then_left_alone_unless_asked(nats_server: NatsServer) -> None:
    async def scenario() -> list[str]:
        conn = await natsdrv.connect(nats_server.url)
        try:
            js = conn.js
            want = natsdrv.stream_config("AFASA_T", ["afasa.>"])
            seen = [(await natsdrv.ensure_stream(js, want)).action]
            seen.append((await natsdrv.ensure_stream(js, want)).action)
            other = natsdrv.stream_config("AFASA_T", ["afasa.>", "legacy.>"])
            report = await natsdrv.ensure_stream(js, other)
            seen.append(report.action)
            info = await js.stream_info("AFASA_T")
            assert info.config.subjects == ["afasa.>"]  # not clobbered
            assert "subjects" in report.differences
            seen.append((await natsdrv.ensure_stream(js, other, update=True)).action)
            info = await js.stream_info("AFASA_T")
            assert sorted(info.config.subjects or []) == ["afasa.>", "legacy.>"]
            # A consumer is created, then updated in place when its config changes.
            cc = natsdrv.consumer_config(
                "afasa-t", "afasa.report.requested", ack_wait_s=5, max_deliver=3
            )
            seen.append(await natsdrv.ensure_consumer(js, "AFASA_T", cc))
            seen.append(await natsdrv.ensure_consumer(js, "AFASA_T", cc))
            cc2 = natsdrv.consumer_config(
                "afasa-t", "afasa.report.requested", ack_wait_s=9, max_deliver=4
            )
            seen.append(await natsdrv.ensure_consumer(js, "AFASA_T", cc2))
            ci = await js.consumer_info("AFASA_T", "afasa-t")
            assert (ci.config.ack_wait, ci.config.max_deliver) == (9, 4)
            # Overlapping subjects in a second stream: a clear error.
            with pytest.raises(DriverError, match=r"overlap|another stream"):
                await natsdrv.ensure_stream(js, natsdrv.stream_config("OTHER", ["afasa.report.>"]))
            return seen
        finally:
            await conn.close()

    assert asyncio.run(scenario()) == [
        "created",
        "unchanged",
        "differs",
        "updated",
        "created",
        "unchanged",
        "updated",
    ]
