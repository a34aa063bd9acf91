"""The S3 driver (infra/s3.py) on a real S3 server that verifies signatures (SeaweedFS),
cross-checked with an independent client (minio's, a test dependency only): what one writes
the other reads, byte for byte, keys with spaces, '+', '=' and non-ASCII included."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator

import httpx
import pytest

from afasa_ops.infra.s3 import S3Client, S3Error
from tests.support.s3_server import S3Server, start_s3

ODD_KEYS = ["tenant/t 1/reports/r+1=ü.csv", "tenant/t1/a~b_c-d.e/f(1).pdf"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture
def client(s3: S3Server) -> Iterator[S3Client]:
    c = S3Client(s3.endpoint, s3.access_key, s3.secret_key)
    yield c
    c.close()


@pytest.fixture
def other(s3: S3Server):  # type: ignore[no-untyped-def]
    from minio import Minio

    return Minio(f"127.0.0.1:{s3.port}", s3.access_key, s3.secret_key, secure=False)


# One bucket for every test: SeaweedFS gives each bucket volumes of its own, and the test
# server's volume limit is small.
BUCKET = "driver"


def _bucket(client: S3Client) -> str:
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    return BUCKET


def test_objects_written_by_either_client_are_read_by_the_other(client: S3Client, other) -> None:  # type: ignore[no-untyped-def]
    bucket = _bucket(client)
    for n, key in enumerate(ODD_KEYS):
        ours, theirs = f"ours {n}".encode(), f"theirs {n}".encode()
        client.put_object(bucket, key, ours, "text/plain")
        assert other.get_object(bucket, key).read() == ours
        other.put_object(bucket, key + ".2", io.BytesIO(theirs), len(theirs))
        assert client.get_object(bucket, key + ".2") == theirs
        assert client.head_object(bucket, key + ".2") == len(theirs)
    listed = client.list_keys(bucket, "tenant/")
    assert listed == sorted(o.object_name for o in other.list_objects(bucket, "tenant/", True))
    assert set(listed) == {*ODD_KEYS, *(k + ".2" for k in ODD_KEYS)}


def test_listing_follows_continuation_pages(client: S3Client) -> None:
    bucket = _bucket(client)
    keys = [f"p/{i:02d}.csv" for i in range(7)]
    for key in keys:
        client.put_object(bucket, key, b"x", "text/csv")
    assert sorted(client.list_keys(bucket, "p/", page_size=2)) == keys
    assert client.list_keys(bucket, "q/", page_size=2) == []


def test_missing_objects_and_buckets_are_answers_not_errors(client: S3Client) -> None:
    bucket = _bucket(client)
    assert client.head_object(bucket, "no/such.csv") is None
    assert client.head_object("driver-no-such-bucket", "x") is None
    assert client.list_keys("driver-no-such-bucket", "") == []
    assert not client.bucket_exists("driver-no-such-bucket")
    client.delete_object(bucket, "no/such.csv")  # deleting what is gone is done
    with pytest.raises(S3Error) as caught:
        client.get_object(bucket, "no/such.csv")
    assert caught.value.code == "NoSuchKey" and caught.value.status == 404


def test_delete_removes_the_object(client: S3Client, other) -> None:  # type: ignore[no-untyped-def]
    bucket = _bucket(client)
    client.put_object(bucket, "d/1.csv", b"1", "text/csv")
    client.delete_object(bucket, "d/1.csv")
    assert client.head_object(bucket, "d/1.csv") is None
    assert list(other.list_objects(bucket, "d/", True)) == []


def test_a_wrong_secret_is_refused_by_the_server(s3: S3Server) -> None:
    wrong = S3Client(s3.endpoint, s3.access_key, "not-the-secret")
    with pytest.raises(S3Error) as caught:
        wrong.list_keys(BUCKET, "")
    assert caught.value.status == 403
    assert caught.value.code in ("SignatureDoesNotMatch", "AccessDenied")


def test_presigned_url_works_for_anyone_until_it_expires(client: S3Client) -> None:
    bucket = _bucket(client)
    key = "presign/" + ODD_KEYS[0]
    client.put_object(bucket, key, b"report body", "text/csv")
    url = client.presigned_get(bucket, key, 300)
    assert httpx.get(url).content == b"report body"
    tampered = url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    assert httpx.get(tampered).status_code == 403
    expired = client.presigned_get(bucket, key, 60, now=time.time() - 3600)
    assert httpx.get(expired).status_code == 403


def test_a_closed_port_raises_httpx_connect_error() -> None:
    from tests.support.services import free_port

    gone = S3Client(f"http://127.0.0.1:{free_port()}", "AK", "SK", connect_timeout_s=2)
    with pytest.raises(httpx.ConnectError):
        gone.head_object("b", "k")


def test_the_server_pages_what_the_driver_asks_for(client: S3Client) -> None:
    """The continuation test above means something only if pages are really short."""
    bucket = _bucket(client)
    for i in range(3):
        client.put_object(bucket, f"short/{i}.csv", b"x", "text/csv")
    response = client._send(
        "GET", bucket, query={"list-type": "2", "max-keys": "2", "prefix": "short/"}
    )
    assert response is not None and b"<IsTruncated>true</IsTruncated>" in response.content


def test_a_file_is_streamed_whole_without_being_held_in_memory(
    client: S3Client,
    other,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """A report of any size costs a chunk of memory: the upload of a 24 MiB file (many
    chunks) allocates far less than the file, and the object is the file, byte for byte."""
    import hashlib
    import os
    import tracemalloc

    bucket = _bucket(client)
    path = tmp_path / "big.csv"
    with path.open("wb") as f:
        for _ in range(24):
            f.write(os.urandom(1 << 20))
    client.head_object(bucket, "warm-up")  # the connection and its buffers, before tracing
    tracemalloc.start()
    try:
        client.put_file(bucket, "big/report.csv", path, "text/csv")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak} bytes allocated at the peak for a 24 MiB upload"
    assert client.head_object(bucket, "big/report.csv") == path.stat().st_size
    got = hashlib.sha256(other.get_object(bucket, "big/report.csv").read()).hexdigest()
    assert got == hashlib.sha256(path.read_bytes()).hexdigest()


class CuttingProxy:
    """A TCP proxy to the S3 server that cuts its first `cuts` connections as soon as a
    request arrives (no answer), then forwards: a gateway restarting under the client."""

    def __init__(self, port: int, cuts: int) -> None:
        import socket
        import threading

        self.target, self.cuts, self.connections = port, cuts, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.cuts:
                conn.recv(1024)
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:  # type: ignore[no-untyped-def]
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_cut_connection_is_tried_again(s3: S3Server, client: S3Client, other) -> None:  # type: ignore[no-untyped-def]
    bucket = _bucket(client)
    proxy = CuttingProxy(s3.port, cuts=1)
    flaky = S3Client(f"http://127.0.0.1:{proxy.port}", s3.access_key, s3.secret_key)
    try:
        flaky.put_object(bucket, "retry/1.csv", b"after a cut", "text/csv")
    finally:
        flaky.close()
        proxy.close()
    assert proxy.connections == 2  # the cut one, then the one that carried the request
    assert other.get_object(bucket, "retry/1.csv").read() == b"after a cut"
