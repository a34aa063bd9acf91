"""Ready reports are downloadable: a served path for file storage, a presigned URL for S3
(SeaweedFS, which checks signatures). The report worker is the workers' own code."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api_stack import MASTER_KEY, ApiStack, WorkerThread, api_stack

CSV = {
    "type": "custom",
    "format": "csv",
    "range_from": "2026-11-01T00:00:00Z",
    "range_to": "2026-11-02T00:00:00Z",
}


def _ready(stack: ApiStack, headers: dict[str, str], timeout_s: float = 30.0) -> dict[str, Any]:
    created = stack.client.post("/api/report/generate", json=CSV, headers=headers)
    assert created.status_code == 202, created.text
    report_id = created.json()["report_id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body: dict[str, Any] = stack.client.get(
            f"/api/report/reports/{report_id}", headers=headers
        ).json()
        if body["status"] == "ready":
            return body
        assert body["status"] in ("queued", "processing"), body
        time.sleep(0.2)
    raise AssertionError(f"report {report_id} not ready within {timeout_s}s")


@pytest.fixture(scope="module")
def file_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("dl-file")) as stack:
            worker = WorkerThread("report", stack.settings).start()
            try:
                yield stack
            finally:
                worker.stop()


def test_file_storage_report_is_served_to_its_tenant_only(file_stack: ApiStack) -> None:
    stack = file_stack
    as_a = stack.auth(stack.tenant_a)
    body = _ready(stack, as_a)
    url = body["download_url"]
    assert url == f"/api/report/reports/{body['id']}/download"
    got = stack.client.get(url, headers=as_a)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    stored = stack.storage_dir / body["s3_key"]
    assert got.content == stored.read_bytes() and got.content
    assert stack.client.get(url).status_code == 401
    assert stack.client.get(url, headers=stack.auth(stack.tenant_b)).status_code == 404
    listed = stack.client.get("/api/report/reports", headers=as_a).json()["reports"]
    assert any(r["id"] == body["id"] and r["download_url"] == url for r in listed)


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiStack, Any]]:
    from tests.support.s3_server import start_s3

    tmp = tmp_path_factory.mktemp("dl-s3")
    s3 = start_s3(tmp / "s3")
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
            mp.setenv("AFASA_TEST_S3_AK", s3.access_key)
            mp.setenv("AFASA_TEST_S3_SK", s3.secret_key)
            lines = [
                f'endpoint = "{s3.endpoint}"',
                'access_key = { env = "AFASA_TEST_S3_AK" }',
                'secret_key = { env = "AFASA_TEST_S3_SK" }',
            ]
            with api_stack(tmp, f"s3://{bucket}", lines) as stack:
                worker = WorkerThread("report", stack.settings).start()
                try:
                    yield stack, s3
                finally:
                    worker.stop()
    finally:
        s3.stop()


def test_s3_report_gets_a_presigned_url_that_the_server_verifies(
    s3_stack: tuple[ApiStack, Any],
) -> None:
    stack, s3 = s3_stack
    as_a = stack.auth(stack.tenant_a)
    assert stack.client.get("/readyz").json()["checks"]["storage"] == "ok"
    body = _ready(stack, as_a)
    url = body["download_url"]
    assert url.startswith(s3.endpoint) and "X-Amz-Signature=" in url
    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200 and fetched.content
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered, timeout=10).status_code == 403
    # The served path redirects to a fresh presigned URL, for the owner only.
    served = f"/api/report/reports/{body['id']}/download"
    redirect = stack.client.get(served, headers=as_a, follow_redirects=False)
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"], timeout=10).content == fetched.content
    other = stack.client.get(served, headers=stack.auth(stack.tenant_b), follow_redirects=False)
    assert other.status_code == 404


def test_readyz_names_storage_when_s3_credentials_are_wrong(
    s3_stack: tuple[ApiStack, Any], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from afasa_ops.api.app import create_app
    from afasa_ops.api.runtime import build_runtime
    from afasa_ops.config import load_settings

    stack, _ = s3_stack
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_TEST_S3_SK", "wrong-secret-key-0123456789")
        runtime = build_runtime(load_settings(stack.settings.source))
        with TestClient(create_app(runtime)) as client:
            r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failed"] == ["storage"]
