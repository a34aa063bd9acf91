"""Input that used to answer 500, or to break a tenant for good, through the reference
service over the real database: report ranges outside what can be stored and read back, a
stored extreme row, NUL bytes in query parameters, a token for a tenant that does not exist,
a JWKS document that is JSON but not an object, and malformed JSON bodies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.api_stack import MASTER_KEY, ApiStack, admin_rows, api_stack

GENERATE = "/api/report/generate"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("sec-api")) as s:
            yield s


def report_count(stack: ApiStack, tenant: uuid.UUID) -> int:
    rows = admin_rows(
        stack.db.admin_dsn, "SELECT count(*) FROM reports WHERE tenant_id = %s", (tenant,)
    )
    return int(rows[0][0])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"range_from": "0001-01-01T00:00:00+14:00", "range_to": "0001-01-05T00:00:00Z"}, "range_from"),
        ({"range_from": "9999-12-28T00:00:00Z", "range_to": "9999-12-31T23:59:59-14:00"}, "range_to"),
        ({"type": "daily", "range_to": "0001-01-01T12:00:00Z"}, "range_to"),
        ({"type": "monthly", "range_to": "0001-01-20T00:00:00Z"}, "range_to"),
        ({"range_from": "2020-01-01T00:00:00Z", "range_to": "2026-01-01T00:00:00Z"}, "range_to"),
        ({"range_from": "2026-01-02T00:00:00Z", "range_to": "2026-01-01T00:00:00Z"}, "range_to"),
    ],
    ids=["year 0 in UTC", "year 10000 in UTC", "daily preset ending in year 1",
         "monthly preset ending in year 1", "six years", "backwards"],
)  # fmt: skip
def test_report_ranges_outside_what_can_be_stored_are_a_422_naming_the_field(
    stack: ApiStack, body: dict[str, str], field: str
) -> None:
    before = report_count(stack, stack.tenant_a)
    r = stack.client.post(GENERATE, json=body, headers=stack.auth(stack.tenant_a))
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert report_count(stack, stack.tenant_a) == before
    listed = stack.client.get("/api/report/reports", headers=stack.auth(stack.tenant_a))
    assert listed.status_code == 200


def test_the_span_limit_is_the_configured_one(stack: ApiStack) -> None:
    r = stack.client.post(
        GENERATE,
        json={"range_from": "2025-01-01T00:00:00Z", "range_to": "2026-01-03T00:00:00Z"},
        headers=stack.auth(stack.tenant_a),
    )
    assert r.status_code == 422 and "report_max_span_days" in r.json()["detail"]


def test_a_stored_extreme_range_never_breaks_the_report_list(stack: ApiStack) -> None:
    tenant = stack.tenant_b
    rows = admin_rows(
        stack.db.admin_dsn,
        "INSERT INTO reports (tenant_id, format, range_from, range_to, status) VALUES "
        "(%s, 'csv', '0001-01-01 00:00:00+14', '9999-12-31 23:59:59-14', 'queued') RETURNING id",
        (tenant,),
    )
    bad = str(rows[0][0])
    ok = stack.client.post(
        GENERATE,
        json={"type": "daily", "format": "csv"},
        headers=stack.auth(tenant),
    )
    assert ok.status_code == 202
    listed = stack.client.get("/api/report/reports", headers=stack.auth(tenant))
    assert listed.status_code == 200, listed.text
    by_id = {r["id"]: r for r in listed.json()["reports"]}
    assert by_id[bad]["range_from"] is None and by_id[bad]["range_to"] is None
    assert by_id[ok.json()["report_id"]]["range_from"] is not None
    one = stack.client.get(f"/api/report/reports/{bad}", headers=stack.auth(tenant))
    assert one.status_code == 200 and one.json()["status"] == "queued"


@pytest.mark.parametrize("query", ["provider=%00", "kind=a%00b", "provider=x&kind=%00", "%00=1"])
def test_nul_bytes_in_query_parameters_are_a_422(stack: ApiStack, query: str) -> None:
    r = stack.client.get(f"/api/devices?{query}", headers=stack.auth(stack.tenant_a))
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["detail"]


def test_a_valid_token_for_an_unknown_tenant_is_a_403_naming_the_reason(stack: ApiStack) -> None:
    ghost = uuid.uuid4()
    auth = stack.auth(ghost)
    for method, path in [
        ("get", "/api/devices"),
        ("post", GENERATE),
        ("get", "/api/report/reports"),
        ("post", "/api/discovery/ubibot/sync"),
        ("post", f"/api/devices/{uuid.uuid4()}/disable"),
    ]:
        kwargs = {"json": {"type": "daily"}} if path == GENERATE else {}
        r = getattr(stack.client, method)(path, headers=auth, **kwargs)
        assert r.status_code == 403, (path, r.text)
        assert (
            f"tenant {ghost}" in r.json()["detail"]
            and "not a registered tenant" in r.json()["detail"]
        )
    assert report_count(stack, ghost) == 0


@pytest.mark.parametrize("body", [b"[1,2]", b'"keys"', b"null", b'{"keys": "nope"}', b"{"])
def test_a_jwks_that_is_json_but_not_an_object_is_a_401(
    tmp_path_factory: pytest.TempPathFactory, body: bytes
) -> None:
    # Its own stack: the verifier must never have had good keys.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("sec-jwks")) as s:
            s.issuer.jwks_body = body
            r = s.client.get("/api/devices", headers=s.auth(s.tenant_a))
            assert r.status_code == 401, r.text
            assert r.json()["detail"].startswith("cannot use the issuer's keys")


@pytest.mark.parametrize(
    "raw", [b'{"type": "daily", "format": }', b'{"type": "daily"', b"not json", b'{"a":1}{']
)
def test_malformed_json_names_the_position_not_a_number_as_field(
    stack: ApiStack, raw: bytes
) -> None:
    r = stack.client.post(
        GENERATE,
        content=raw,
        headers={**stack.auth(stack.tenant_a), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "body"
    assert error["message"].startswith("malformed JSON at character ")
