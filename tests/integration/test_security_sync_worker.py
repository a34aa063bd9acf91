"""`worker sync`: the configured UbiBot key serves `[ubibot] tenant_id` only; every other
tenant syncs with its own `ubibot_api_key` secret, and a tenant with none is left alone.
(Its own module: the API tests set the AFASA_OPS_UBIBOT_* variables a worker would inherit.)"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops.platform import devices, secrets
from tests.support.api_stack import admin_rows
from tests.support.platform_db import PlatformDb, add_tenant
from tests.support.services import NatsServer
from tests.support.ubibot_double import UbibotDouble, make_channels
from tests.support.workers import WorkerProcess, write_config


@pytest.fixture
def ubibot() -> Iterator[UbibotDouble]:
    with UbibotDouble(slow_s=3.0) as double:
        yield double


def test_worker_sync_uses_the_configured_key_for_its_tenant_only(
    pdb: PlatformDb, engine, ubibot: UbibotDouble, nats_server: NatsServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    master = os.urandom(32)
    a = add_tenant(pdb.admin_dsn, "worker A (configured key)")
    b = add_tenant(pdb.admin_dsn, "worker B (own secret)")
    c = add_tenant(pdb.admin_dsn, "worker C (no key)")
    # A also has a secret of its own: the configured key wins for A, and is used only once.
    secrets.store_secret(engine, a, devices.UBIBOT_SECRET_PURPOSE, "wk-secret-a", master)
    secrets.store_secret(engine, b, devices.UBIBOT_SECRET_PURPOSE, "wk-secret-b", master)
    ubibot.set_channels("wk-config-a", make_channels(2, "wa-"))
    ubibot.set_channels("wk-secret-a", make_channels(5, "wrongA-"))
    ubibot.set_channels("wk-secret-b", make_channels(3, "wb-"))
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{tmp_path}/s",
        # The tenant written in capitals: the same tenant, not a second one.
        extra=f'[ubibot]\nbase_url = "{ubibot.base_url}"\ntenant_id = "{str(a).upper()}"\n'
        'account_key = { env = "WK_UBIBOT_KEY" }',
    )
    env = {
        "AFASA_MASTER_KEY_BASE64": base64.b64encode(master).decode(),
        "WK_UBIBOT_KEY": "wk-config-a",
    }
    w = WorkerProcess(cfg, "sync", tmp_path / "sync.log", ["--once", "--json"], env).start()
    code = w.wait(120)
    out = w.logs()
    assert code == 0, out
    doc = json.loads(out[out.index('{\n  "tenants"') :])
    synced = {t["tenant_id"] for t in doc["tenants"]}
    assert str(c) not in synced  # no key of its own: not synced with anyone else's
    mine = [k for k in ubibot.requests if k.startswith("wk-")]
    assert sorted(mine) == ["wk-config-a", "wk-secret-b"]
    rows = admin_rows_of(pdb, "SELECT tenant_id, external_id FROM devices")
    assert {e for t, e in rows if t == a} == {"wa-100000", "wa-100001"}
    assert {e for t, e in rows if t == b} == {f"wb-{100000 + i}" for i in range(3)}
    assert not any(t == c for t, _ in rows)


def admin_rows_of(pdb: PlatformDb, sql: str) -> list[tuple[uuid.UUID, str]]:
    return [(uuid.UUID(str(r[0])), str(r[1])) for r in admin_rows(pdb.admin_dsn, sql)]
