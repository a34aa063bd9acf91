"""A configured single-tenant UbiBot key belongs to `[ubibot] tenant_id` only: every other
tenant syncs with its own `ubibot_api_key` secret or is refused naming that secret, over the
API (this module) and in `worker sync` (test_security_sync_worker.py). The UbiBot double records which key each fetch was made with."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.api_stack import MASTER_KEY, ApiStack, admin_rows, api_stack
from tests.support.platform_db import add_tenant
from tests.support.ubibot_double import make_channels

CONFIG_KEY = "cfg-key-of-a"
TENANT_A = uuid.uuid4()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        mp.setenv("AFASA_OPS_UBIBOT_ACCOUNT_KEY", CONFIG_KEY)
        mp.setenv("AFASA_OPS_UBIBOT_TENANT_ID", str(TENANT_A))
        with api_stack(tmp_path_factory.mktemp("sec-sync"), tenant_a=TENANT_A) as s:
            s.ubibot.set_channels(CONFIG_KEY, make_channels(3, "cfgA-"))
            s.ubibot.set_channels("key-a", make_channels(1, "secretA-"))
            s.ubibot.set_channels("key-b", make_channels(2, "own-b-"))
            yield s


def external_ids(stack: ApiStack, tenant: uuid.UUID) -> set[str]:
    rows = admin_rows(
        stack.db.admin_dsn, "SELECT external_id FROM devices WHERE tenant_id = %s", (tenant,)
    )
    return {r[0] for r in rows}


def test_configured_key_serves_its_own_tenant(stack: ApiStack) -> None:
    before = len(stack.ubibot.requests)
    r = stack.client.post("/api/discovery/ubibot/sync", headers=stack.auth(stack.tenant_a))
    assert r.status_code == 200, r.text
    assert stack.ubibot.requests[before:] == [CONFIG_KEY]
    assert external_ids(stack, stack.tenant_a) == {f"cfgA-{100000 + i}" for i in range(3)}


@pytest.mark.parametrize(
    "route", ["/api/discovery/ubibot/sync", "/api/tb/integrations/ubibot/sync"]
)
def test_another_tenant_syncs_with_its_own_secret_never_the_configured_key(
    stack: ApiStack, route: str
) -> None:
    before = len(stack.ubibot.requests)
    r = stack.client.post(route, headers=stack.auth(stack.tenant_b))
    assert r.status_code == 200, r.text
    assert stack.ubibot.requests[before:] == ["key-b"]
    assert external_ids(stack, stack.tenant_b) == {"own-b-100000", "own-b-100001"}


def test_a_tenant_without_a_secret_is_refused_naming_it_and_nothing_is_fetched(
    stack: ApiStack,
) -> None:
    tenant_c = add_tenant(stack.db.admin_dsn, "farm C, no key")
    before = len(stack.ubibot.requests)
    r = stack.client.post("/api/discovery/ubibot/sync", headers=stack.auth(tenant_c))
    assert r.status_code == 409, r.text
    assert "ubibot_api_key" in r.json()["detail"] and str(tenant_c) in r.json()["detail"]
    assert stack.ubibot.requests[before:] == []
    assert external_ids(stack, tenant_c) == set()
