"""Devices through the reference service: tenant isolation under RLS, enable/disable as
commands (desired state, command row, audit row, outbox event), UbiBot sync per tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.api_stack import (
    MASTER_KEY,
    ApiStack,
    add_device,
    admin_rows,
    api_stack,
    ubibot_channel,
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("api-devices")) as s:
            yield s


def test_tenants_see_only_their_devices(stack: ApiStack) -> None:
    a = add_device(stack.db.admin_dsn, stack.tenant_a, "iso-a1")
    b = add_device(stack.db.admin_dsn, stack.tenant_b, "iso-b1")
    as_a, as_b = stack.auth(stack.tenant_a), stack.auth(stack.tenant_b)
    ids_a = {d["id"] for d in stack.client.get("/api/devices", headers=as_a).json()["devices"]}
    ids_b = {d["id"] for d in stack.client.get("/api/devices", headers=as_b).json()["devices"]}
    assert str(a) in ids_a and str(b) not in ids_a
    assert str(b) in ids_b and str(a) not in ids_b
    assert stack.client.get(f"/api/devices/{a}", headers=as_a).json()["external_id"] == "iso-a1"


def test_other_tenants_device_is_indistinguishable_from_unknown(stack: ApiStack) -> None:
    b = add_device(stack.db.admin_dsn, stack.tenant_b, "iso-b2")
    as_a = stack.auth(stack.tenant_a)
    unknown = uuid.uuid4()
    for verb in ("get", "enable", "disable", "tb-disable"):
        answers = []
        for target in (b, unknown):
            if verb == "get":
                r = stack.client.get(f"/api/devices/{target}", headers=as_a)
            elif verb == "tb-disable":
                r = stack.client.post(f"/api/tb/devices/{target}/disable", headers=as_a)
            else:
                r = stack.client.post(f"/api/devices/{target}/{verb}", headers=as_a)
            answers.append((r.status_code, r.json()))
        assert answers[0] == answers[1] == (404, {"detail": "device not found"}), verb
    # B's device was not changed and no command was recorded for it.
    rows = admin_rows(stack.db.admin_dsn, "SELECT desired_enabled FROM devices WHERE id=%s", (b,))
    assert rows == [(True,)]
    cmds = admin_rows(
        stack.db.admin_dsn, "SELECT count(*) FROM device_commands WHERE device_id=%s", (b,)
    )
    assert cmds == [(0,)]


@pytest.mark.parametrize("prefix", ["/api/devices", "/api/tb/devices"])
def test_disable_records_command_audit_and_event(stack: ApiStack, prefix: str) -> None:
    device = add_device(stack.db.admin_dsn, stack.tenant_a, f"cmd-{prefix.replace('/', '-')}")
    response = stack.client.post(
        f"{prefix}/{device}/disable",
        headers={**stack.auth(stack.tenant_a), "X-Correlation-ID": "corr-disable-1"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    command_id = uuid.UUID(body["command_id"])
    assert body["desired_enabled"] is False
    dsn = stack.db.admin_dsn
    assert admin_rows(dsn, "SELECT desired_enabled FROM devices WHERE id=%s", (device,)) == [
        (False,)
    ]
    cmd = admin_rows(
        dsn,
        "SELECT command, status, tenant_id, correlation_id FROM device_commands WHERE id=%s",
        (command_id,),
    )
    assert cmd == [("disable", "requested", stack.tenant_a, "corr-disable-1")]
    audit = admin_rows(
        dsn,
        "SELECT count(*) FROM audit_log WHERE target_id=%s AND tenant_id=%s",
        (str(device), stack.tenant_a),
    )
    assert audit[0][0] >= 1
    outbox = admin_rows(
        dsn,
        "SELECT count(*) FROM event_outbox WHERE subject='afasa.device.command.requested' "
        "AND payload->'data'->>'command_id' = %s",
        (str(command_id),),
    )
    assert outbox == [(1,)]


def test_device_filters(stack: ApiStack) -> None:
    add_device(stack.db.admin_dsn, stack.tenant_a, "flt-cam", kind="camera")
    as_a = stack.auth(stack.tenant_a)
    cams = stack.client.get("/api/devices", params={"kind": "camera"}, headers=as_a).json()
    assert cams["devices"] and all(d["kind"] == "camera" for d in cams["devices"])
    none = stack.client.get("/api/devices", params={"provider": "thingsboard"}, headers=as_a)
    assert none.json() == {"devices": []}


def test_sync_creates_devices_for_the_callers_tenant_only(stack: ApiStack) -> None:
    stack.ubibot.channels["key-a"] = [ubibot_channel(i) for i in range(3)]
    stack.ubibot.channels["key-b"] = [ubibot_channel(i) for i in range(10, 12)]
    as_a = stack.auth(stack.tenant_a)
    first = stack.client.post("/api/tb/integrations/ubibot/sync", headers=as_a)
    assert first.status_code == 200, first.text
    assert first.json() == {"devices_found": 3, "inserted": 3, "updated": 0, "unchanged": 0}
    again = stack.client.post("/api/discovery/ubibot/sync", headers=as_a)
    assert again.json()["inserted"] == 0 and again.json()["devices_found"] == 3
    rows = admin_rows(
        stack.db.admin_dsn,
        "SELECT tenant_id, count(*) FROM devices WHERE external_id LIKE '3000%%' GROUP BY 1",
    )
    assert rows == [(stack.tenant_a, 3)]


def test_sync_with_a_rejected_key_is_502_and_writes_nothing(stack: ApiStack) -> None:
    stack.ubibot.channels.pop("key-b", None)
    response = stack.client.post("/api/discovery/ubibot/sync", headers=stack.auth(stack.tenant_b))
    assert response.status_code == 502
    assert "UbiBot" in response.json()["detail"] and "key-b" not in response.text
    rows = admin_rows(
        stack.db.admin_dsn,
        "SELECT count(*) FROM devices WHERE tenant_id=%s AND provider='ubibot' AND external_id LIKE '3000%%'",
        (stack.tenant_b,),
    )
    assert rows == [(0,)]


def test_malformed_device_id_is_422_naming_the_field(stack: ApiStack) -> None:
    r = stack.client.get("/api/devices/not-a-uuid", headers=stack.auth(stack.tenant_a))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "device_id"
