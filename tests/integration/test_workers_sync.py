"""UbiBot sync against a real HTTP double and the real PostgreSQL (as the NOBYPASSRLS role):
counts, a second sync that inserts nothing, every documented failure leaves nothing written,
and `worker sync --once` keeps going past a failing tenant."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from afasa_ops.platform import devices, events, secrets
from tests.support.platform_db import PlatformDb, add_tenant
from tests.support.services import NatsServer
from tests.support.ubibot_double import UbibotDouble, make_channels
from tests.support.workers import (
    WorkerProcess,
    admin_scalar,
    subject_messages,
    wait_for,
    write_config,
)


@pytest.fixture
def ubibot() -> Iterator[UbibotDouble]:
    with UbibotDouble(slow_s=3.0) as double:
        yield double


def device_count(pdb: PlatformDb, tenant: uuid.UUID) -> int:
    return int(
        admin_scalar(pdb.admin_dsn, "SELECT count(*) FROM devices WHERE tenant_id = %s", (tenant,))
    )


def outbox_count(pdb: PlatformDb, tenant: uuid.UUID) -> int:
    return int(
        admin_scalar(
            pdb.admin_dsn, "SELECT count(*) FROM event_outbox WHERE tenant_id = %s", (tenant,)
        )
    )


def test_sync_counts_inserted_updated_unchanged_and_a_second_sync_inserts_nothing(
    pdb: PlatformDb, engine, ubibot: UbibotDouble
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, "sync-counts")
    channels = make_channels(25)
    ubibot.set_channels("key-counts", channels)
    first = devices.sync_ubibot(engine, tenant, base_url=ubibot.base_url, account_key="key-counts")
    assert first == devices.SyncCounts(25, 25, 0, 0)
    again = devices.sync_ubibot(engine, tenant, base_url=ubibot.base_url, account_key="key-counts")
    assert again == devices.SyncCounts(25, 0, 0, 25)
    channels[3]["name"] = "Renamed sensor"
    channels.append(make_channels(30)[29])
    ubibot.set_channels("key-counts", channels)
    third = devices.sync_ubibot(engine, tenant, base_url=ubibot.base_url, account_key="key-counts")
    assert third == devices.SyncCounts(26, 1, 1, 24)
    rows = devices.list_devices(engine, tenant, provider="ubibot")
    assert len(rows) == 26
    renamed = next(d for d in rows if d.external_id == channels[3]["channel_id"])
    assert renamed.name == "Renamed sensor" and renamed.kind == "sensor"
    assert renamed.metadata["product_id"] == "ubibot-ws1"
    assert renamed.metadata["last_values"]["field1"]["value"] == 21.5  # JSON-in-JSON decoded
    assert renamed.last_seen_at is not None
    synced = admin_scalar(
        pdb.admin_dsn,
        "SELECT array_agg(payload->'data'->>'inserted' ORDER BY created_at) FROM event_outbox "
        "WHERE tenant_id = %s AND subject = %s",
        (tenant, events.DEVICE_SYNCED),
    )
    assert synced == ["25", "0", "1"]


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("http500", "UbiBot HTTP 500"),
        ("timeout", "timed out"),
        ("error200", "invalid_api_key"),
        ("malformed", "malformed JSON"),
        ("no_channel_id", "has no channel_id"),
    ],
)
def test_ubibot_failures_name_the_tenant_and_write_nothing(
    pdb: PlatformDb, engine, ubibot: UbibotDouble, how: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    tenant = add_tenant(pdb.admin_dsn, f"sync-{how}")
    ubibot.set_channels("key-bad", make_channels(10))
    ubibot.fail("key-bad", how)
    with pytest.raises(devices.SyncError) as info:
        devices.sync_ubibot(
            engine, tenant, base_url=ubibot.base_url, account_key="key-bad", timeout_s=1.0
        )
    message = str(info.value)
    assert message.startswith(f"tenant {tenant}: UbiBot sync failed:") and says in message
    assert "key-bad" not in message  # the account key never shows
    assert device_count(pdb, tenant) == 0 and outbox_count(pdb, tenant) == 0
    assert info.value.retryable is (how in ("http500", "timeout", "malformed"))


def test_secrets_are_aes_gcm_nonce_then_ciphertext(pdb: PlatformDb, engine) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    tenant = add_tenant(pdb.admin_dsn, "secrets")
    key = os.urandom(32)
    secrets.store_secret(engine, tenant, "ubibot_api_key", "acct-123456", key)
    blob = bytes(
        admin_scalar(
            pdb.admin_dsn, "SELECT cipher_text FROM secrets WHERE tenant_id = %s", (tenant,)
        )
    )
    # The contract's format, decrypted independently: nonce(12) || ciphertext+tag, no AAD.
    assert AESGCM(key).decrypt(blob[:12], blob[12:], None) == b"acct-123456"
    assert secrets.load_secret(engine, tenant, "ubibot_api_key", key) == "acct-123456"
    with pytest.raises(Exception, match="does not decrypt with this master key"):
        secrets.load_secret(engine, tenant, "ubibot_api_key", os.urandom(32))
    with pytest.raises(Exception, match="decodes to 16 bytes"):
        secrets.parse_master_key(base64.b64encode(os.urandom(16)).decode())


def test_worker_sync_once_reports_a_failing_tenant_and_syncs_the_others(
    pdb: PlatformDb, engine, ubibot: UbibotDouble, nats_server: NatsServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    master = os.urandom(32)
    good = add_tenant(pdb.admin_dsn, "once-good")
    bad = add_tenant(pdb.admin_dsn, "once-bad")
    secrets.store_secret(engine, good, devices.UBIBOT_SECRET_PURPOSE, "key-good-1", master)
    secrets.store_secret(engine, bad, devices.UBIBOT_SECRET_PURPOSE, "key-bad-1", master)
    ubibot.set_channels("key-good-1", make_channels(7, "g"))
    ubibot.set_channels("key-bad-1", make_channels(3, "b"))
    ubibot.fail("key-bad-1", "error200")
    cfg = write_config(
        tmp_path / "afasa-ops.toml",
        pdb,
        nats_server.url,
        storage_url=f"file://{tmp_path}/s",
        extra=f'[ubibot]\nbase_url = "{ubibot.base_url}"\ntimeout_s = 2.0',
    )
    env = {"AFASA_MASTER_KEY_BASE64": base64.b64encode(master).decode()}
    w = WorkerProcess(cfg, "sync", tmp_path / "sync.log", ["--once", "--json"], env).start()
    code = w.wait(120)
    out = w.logs()
    assert code == 1, out  # one tenant failed: the pass says so
    doc = json.loads(out[out.index('{\n  "tenants"') :])
    by_tenant = {t["tenant_id"]: t for t in doc["tenants"]}
    assert by_tenant[str(good)]["counts"]["inserted"] == 7
    assert (
        f"tenant {bad}: UbiBot sync failed: UbiBot error invalid_api_key"
        in by_tenant[str(bad)]["error"]
    )
    assert device_count(pdb, good) == 7 and device_count(pdb, bad) == 0
    assert "key-good-1" not in out and "key-bad-1" not in out
    synced = [json.loads(m.data) for m in subject_messages(nats_server.url, events.DEVICE_SYNCED)]
    mine = [e for e in synced if e["tenant_id"] in (str(good), str(bad))]
    assert [(e["tenant_id"], e["data"]["inserted"]) for e in mine] == [(str(good), 7)]


def test_worker_sync_in_interval_mode_retries_a_rate_limited_tenant_and_stops_cleanly(
    pdb: PlatformDb, engine, ubibot: UbibotDouble, nats_server: NatsServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    master = os.urandom(32)
    fine = add_tenant(pdb.admin_dsn, "interval-fine")
    slow = add_tenant(pdb.admin_dsn, "interval-limited")
    secrets.store_secret(engine, fine, devices.UBIBOT_SECRET_PURPOSE, "key-fine-1", master)
    secrets.store_secret(engine, slow, devices.UBIBOT_SECRET_PURPOSE, "key-slow-1", master)
    ubibot.set_channels("key-fine-1", make_channels(4, "f"))
    ubibot.set_channels("key-slow-1", make_channels(2, "s"))
    ubibot.fail("key-slow-1", "rate_limited")
    cfg = write_config(
        tmp_path / "afasa-ops.toml", pdb, nats_server.url, storage_url=f"file://{tmp_path}/s",
        workers={"backoff_s": [0.1]},
        extra=f'[ubibot]\nbase_url = "{ubibot.base_url}"\ninterval_s = 0.5\njitter_s = 0.2',
    )  # fmt: skip
    env = {"AFASA_MASTER_KEY_BASE64": base64.b64encode(master).decode()}
    w = WorkerProcess(cfg, "sync", tmp_path / "sync.log", [], env).start()
    try:
        w.wait_healthy()
        # Within a pass the rate-limited tenant is retried (3 attempts), and passes repeat.
        wait_for(lambda: ubibot.requests.count("key-slow-1") >= 6, 60, "two passes of retries")
        assert device_count(pdb, fine) == 4 and device_count(pdb, slow) == 0
        ubibot.set_channels("key-slow-1", make_channels(2, "s"))  # the limit lifts
        wait_for(lambda: device_count(pdb, slow) == 2, 60, "the limited tenant synced later")
        assert "request_too_fast" in w.logs() and str(slow) in w.logs()
    finally:
        code = w.terminate()
    assert code == 0
