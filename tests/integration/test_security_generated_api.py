"""Generated requests over the OpenAPI schema of the reference service, on the real database
as the NOBYPASSRLS role: whatever tenant B's admin sends, nothing answers 5xx and nothing of
tenant A changes. Two generators: schemathesis explores every operation broadly; hypothesis
strategies over the same schema (tests/support/openapi_strategies.py) aim at the input
classes an adversarial probe found (NUL bytes, extreme dates, other tenants' ids, malformed
JSON). Path ids are random, hostile, or A's (which must behave like unknown ones). Bounded:
a few dozen cases per operation and 150 hostile requests, well under a minute."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api_stack import MASTER_KEY, ApiStack, add_device, admin_rows, api_stack
from tests.support.openapi_strategies import any_request
from tests.support.ubibot_double import make_channels

# A's rows, read as the admin: any change after B's generated traffic is a cross-tenant effect.
TENANT_TABLES = ("devices", "device_commands", "reports", "audit_log", "event_outbox", "secrets")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("sec-gen")) as s:
            s.ubibot.set_channels("key-a", make_channels(2, "ga-"))
            s.ubibot.set_channels("key-b", make_channels(2, "gb-"))
            yield s


@pytest.fixture(scope="module")
def a_ids(stack: ApiStack) -> dict[str, str]:
    device = add_device(stack.db.admin_dsn, stack.tenant_a, "gen-a-1")
    r = stack.client.post(
        "/api/report/generate", json={"type": "daily"}, headers=stack.auth(stack.tenant_a)
    )
    assert r.status_code == 202
    return {"device_id": str(device), "report_id": r.json()["report_id"]}


@pytest.fixture(scope="module")
def a_before(stack: ApiStack, a_ids: dict[str, str]) -> dict[str, Any]:
    return tenant_state(stack, stack.tenant_a)


def tenant_state(stack: ApiStack, tenant: uuid.UUID) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for table in TENANT_TABLES:
        rows = admin_rows(
            stack.db.admin_dsn,
            f"SELECT to_jsonb(t)::text FROM {table} t WHERE tenant_id = %s ORDER BY 1",
            (tenant,),
        )
        state[table] = [r[0] for r in rows]
    return state


@pytest.fixture(scope="module")
def api_schema(stack: ApiStack) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", stack.client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_never_answer_5xx_nor_touch_another_tenant(
    case: Any, stack: ApiStack, a_ids: dict[str, str], a_before: dict[str, Any]
) -> None:
    case.headers = {**(case.headers or {}), **stack.auth(stack.tenant_b)}
    params = case.path_parameters or {}
    for name in ("device_id", "report_id"):
        # Half the cases aim at A's real ids: they must look exactly like unknown ones.
        if name in params and int(hashlib.sha256(repr(params).encode()).hexdigest(), 16) % 2:
            params[name] = a_ids[name]
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, params, response.text[:300])
    if any(params.get(n) == a_ids[n] for n in ("device_id", "report_id")):
        # Never served: 404 as for an unknown id (or refused earlier: 4xx).
        assert response.status_code >= 400, (case.method, case.path, response.text[:300])


@given(request=st.data())
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_hostile_requests_over_the_schema_never_answer_5xx(
    request: st.DataObject, stack: ApiStack, a_ids: dict[str, str], a_before: dict[str, Any]
) -> None:
    doc = stack.client.app.openapi()
    ids = [a_ids["device_id"], a_ids["report_id"]]
    req = request.draw(any_request(doc, ids))
    headers = {**req.headers, **stack.auth(stack.tenant_b)}
    if req.raw_body is not None:
        headers["Content-Type"] = "application/json"
        response = stack.client.request(
            req.method, req.path, params=req.query, headers=headers, content=req.raw_body
        )
    else:
        response = stack.client.request(
            req.method,
            req.path,
            params=req.query,
            headers=headers,
            json=req.json_body if req.json_body is not None else None,
        )
    assert response.status_code < 500, (req, response.text[:300])
    if any(i in req.path for i in ids):
        assert response.status_code >= 400, (req, response.text[:300])


def test_tenant_a_is_unchanged_after_the_generated_traffic(
    stack: ApiStack, a_before: dict[str, Any]
) -> None:
    assert tenant_state(stack, stack.tenant_a) == a_before
