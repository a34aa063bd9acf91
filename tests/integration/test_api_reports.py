"""Reports through the reference service: 202 + queued, validation (422 naming the field),
tenant isolation of report ids, and the readiness probes (/readyz names what failed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api_stack import MASTER_KEY, ApiStack, admin_rows, api_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("api-reports")) as s:
            yield s


CUSTOM = {
    "type": "custom",
    "format": "csv",
    "range_from": "2026-11-01T00:00:00Z",
    "range_to": "2026-11-02T00:00:00Z",
}


def test_generate_answers_202_queued_and_records_the_request(stack: ApiStack) -> None:
    r = stack.client.post("/api/report/generate", json=CUSTOM, headers=stack.auth(stack.tenant_a))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued"
    report_id = uuid.UUID(body["report_id"])
    rows = admin_rows(
        stack.db.admin_dsn,
        "SELECT tenant_id, format, report_type, status FROM reports WHERE id=%s",
        (report_id,),
    )
    assert rows == [(stack.tenant_a, "csv", "custom", "queued")]
    events = admin_rows(
        stack.db.admin_dsn,
        "SELECT count(*) FROM event_outbox WHERE subject='afasa.report.requested' "
        "AND payload->'data'->>'report_id' = %s",
        (str(report_id),),
    )
    assert events == [(1,)]
    status = stack.client.get(
        f"/api/report/reports/{report_id}", headers=stack.auth(stack.tenant_a)
    )
    assert status.status_code == 200
    assert status.json()["status"] == "queued" and "download_url" not in status.json()


@pytest.mark.parametrize("preset", ["daily", "weekly", "monthly"])
def test_preset_types_need_no_range(stack: ApiStack, preset: str) -> None:
    r = stack.client.post(
        "/api/report/generate",
        json={"type": preset, "format": "pdf"},
        headers=stack.auth(stack.tenant_a),
    )
    assert r.status_code == 202, r.text
    rows = admin_rows(
        stack.db.admin_dsn,
        "SELECT report_type, range_to - range_from FROM reports WHERE id=%s",
        (uuid.UUID(r.json()["report_id"]),),
    )
    days = {"daily": 1, "weekly": 7, "monthly": 30}[preset]
    assert rows[0][0] == preset and rows[0][1].days == days


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("type", {**CUSTOM, "type": "hourly"}, "type"),
    ("format", {**CUSTOM, "format": "docx"}, "format"),
    ("reversed range", {**CUSTOM, "range_to": "2026-10-01T00:00:00Z"}, "range_to"),
    ("custom without from", {"type": "custom", "format": "csv"}, "range_from"),
    ("date garbage", {**CUSTOM, "range_from": "yesterday"}, "range_from"),
    ("unknown key", {**CUSTOM, "tenant_id": str(uuid.uuid4())}, "tenant_id"),
    ("range too long", {**CUSTOM, "range_from": "2020-01-01T00:00:00Z"}, "range_to"),
    ("not an object", ["daily"], "body"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_malformed_bodies_get_422_naming_the_field(
    stack: ApiStack, case: str, body: Any, field: str
) -> None:
    before = admin_rows(stack.db.admin_dsn, "SELECT count(*) FROM reports")
    r = stack.client.post("/api/report/generate", json=body, headers=stack.auth(stack.tenant_a))
    assert r.status_code == 422, (case, r.text)
    fields = [e["field"] for e in r.json()["errors"]]
    assert field in fields, (case, r.json())
    assert field in r.json()["detail"]
    assert admin_rows(stack.db.admin_dsn, "SELECT count(*) FROM reports") == before


def test_invalid_json_gets_422(stack: ApiStack) -> None:
    r = stack.client.post(
        "/api/report/generate",
        content=b"{not json",
        headers={**stack.auth(stack.tenant_a), "Content-Type": "application/json"},
    )
    assert r.status_code == 422


def test_reports_are_isolated_between_tenants(stack: ApiStack) -> None:
    as_a, as_b = stack.auth(stack.tenant_a), stack.auth(stack.tenant_b)
    mine = stack.client.post("/api/report/generate", json=CUSTOM, headers=as_b).json()["report_id"]
    other = stack.client.get(f"/api/report/reports/{mine}", headers=as_a)
    unknown = stack.client.get(f"/api/report/reports/{uuid.uuid4()}", headers=as_a)
    assert (other.status_code, other.json()) == (unknown.status_code, unknown.json())
    assert other.status_code == 404
    download = stack.client.get(f"/api/report/reports/{mine}/download", headers=as_a)
    assert download.status_code == 404
    listed_a = {
        r["id"] for r in stack.client.get("/api/report/reports", headers=as_a).json()["reports"]
    }
    listed_b = {
        r["id"] for r in stack.client.get("/api/report/reports", headers=as_b).json()["reports"]
    }
    assert mine in listed_b and mine not in listed_a


def test_readyz_names_the_failing_dependency(stack: ApiStack) -> None:
    ok = stack.client.get("/readyz")
    assert ok.status_code == 200, ok.text
    assert ok.json()["failed"] == []
    stack.nats.stop()
    try:
        down = stack.client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["failed"] == ["nats"]
        assert down.json()["checks"]["database"] == "ok"
    finally:
        stack.nats.start()
    assert stack.client.get("/readyz").status_code == 200
    assert stack.client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_storage_and_database_failures(stack: ApiStack, tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from afasa_ops.api.app import create_app
    from afasa_ops.api.runtime import build_runtime
    from afasa_ops.config import load_settings

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    text = stack.settings.source.read_text()
    text = text.replace(f'url = "file://{stack.storage_dir}"', f'url = "file://{blocker}/reports"')
    text = text.replace(stack.db.app_dsn, stack.db.app_dsn.rsplit("/", 1)[0] + "/no_such_db_x")
    config = tmp_path / "broken.toml"
    config.write_text(text)
    runtime = build_runtime(load_settings(config))
    with TestClient(create_app(runtime)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert sorted(r.json()["failed"]) == ["database", "storage"]


def test_metrics_count_requests_by_route(stack: ApiStack) -> None:
    stack.client.get("/healthz")
    text = stack.client.get("/metrics").text
    assert 'afasa_api_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/api/report/generate"' in text


def test_readyz_refuses_a_role_that_bypasses_rls(stack: ApiStack, tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from afasa_ops.api.app import create_app
    from afasa_ops.api.runtime import build_runtime
    from afasa_ops.config import load_settings

    text = stack.settings.source.read_text()
    text = text.replace(f'app_dsn = "{stack.db.app_dsn}"', f'app_dsn = "{stack.db.admin_dsn}"')
    config = tmp_path / "superuser.toml"
    config.write_text(text)
    runtime = build_runtime(load_settings(config))
    with TestClient(create_app(runtime)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failed"] == ["database"]
    assert "row-level security is not enforced" in r.json()["checks"]["database"]
