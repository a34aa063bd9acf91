"""Devices: UbiBot sync (batched upserts that count inserted/updated/unchanged), enable and
disable requests (desired state, command row, audit row and event in one transaction), and the
command's completion as the commands worker records it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from afasa_ops.platform import events
from afasa_ops.platform.db import as_uuid, tenant_transaction
from afasa_ops.platform.outbox import enqueue
from afasa_ops.platform.ubibot import Channel, UbibotClient, UbibotError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

PRODUCER = "afasa-ops"
UBIBOT_SECRET_PURPOSE = "ubibot_api_key"
UBIBOT_KIND = "sensor"
DEFAULT_BATCH = 1000

_DEVICE_COLS = (
    "id, tenant_id, provider, external_id, name, kind, metadata, desired_enabled, "
    "reported_enabled, thingsboard_id, last_seen_at, synced_at, created_at, updated_at"
)


@dataclass(frozen=True)
class SyncCounts:
    devices_found: int
    inserted: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceView:
    id: uuid.UUID
    tenant_id: uuid.UUID
    provider: str
    external_id: str
    name: str | None
    kind: str | None
    metadata: dict[str, Any] | None
    desired_enabled: bool | None
    reported_enabled: bool | None
    thingsboard_id: str | None
    last_seen_at: datetime | None
    synced_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class CommandView:
    id: uuid.UUID
    tenant_id: uuid.UUID
    device_id: uuid.UUID
    command: str
    status: str
    requested_by: str | None
    requested_at: datetime | None
    completed_at: datetime | None
    error: str | None
    correlation_id: str | None
    result: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, uuid.UUID):
            v = str(v)
        elif isinstance(v, datetime):
            v = v.isoformat()
        out[k] = v
    return out


# --- reads ---------------------------------------------------------------------------------


def list_devices(
    db: Engine, tenant_id: uuid.UUID | str, provider: str | None = None, kind: str | None = None
) -> list[DeviceView]:
    from sqlalchemy import text

    sql = f"SELECT {_DEVICE_COLS} FROM devices WHERE tenant_id = :t"
    params: dict[str, Any] = {"t": str(as_uuid(tenant_id))}
    if provider is not None:
        sql += " AND provider = :p"
        params["p"] = provider
    if kind is not None:
        sql += " AND kind = :k"
        params["k"] = kind
    with tenant_transaction(db, tenant_id) as conn:
        rows = conn.execute(text(sql + " ORDER BY provider, external_id"), params).all()
    return [DeviceView(*r) for r in rows]


def get_device(
    db: Engine, tenant_id: uuid.UUID | str, device_id: uuid.UUID | str
) -> DeviceView | None:
    with tenant_transaction(db, tenant_id) as conn:
        return _device(conn, device_id)


def _device(
    conn: Connection, device_id: uuid.UUID | str, *, lock: bool = False
) -> DeviceView | None:
    from sqlalchemy import text

    try:
        did = as_uuid(device_id)
    except ValueError:
        return None
    sql = f"SELECT {_DEVICE_COLS} FROM devices WHERE id = :d" + (" FOR UPDATE" if lock else "")
    row = conn.execute(text(sql), {"d": did}).first()
    return DeviceView(*row) if row else None


_COMMAND_COLS = (
    "id, tenant_id, device_id, command, status, requested_by, requested_at, completed_at, "
    "error, correlation_id, result"
)


def _command(
    conn: Connection, command_id: uuid.UUID | str, *, lock: bool = False
) -> CommandView | None:
    from sqlalchemy import text

    try:
        cid = as_uuid(command_id)
    except ValueError:
        return None
    sql = f"SELECT {_COMMAND_COLS} FROM device_commands WHERE id = :c" + (
        " FOR UPDATE" if lock else ""
    )
    row = conn.execute(text(sql), {"c": cid}).first()
    if row is None:
        return None
    values = list(row)
    values[-1] = _json_or_text(values[-1])
    return CommandView(*values)


def _json_or_text(value: Any) -> dict[str, Any] | None:
    """device_commands.result holds JSON (a text column in some schemas, jsonb in others)."""
    if value is None or isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {"text": str(value)}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


# --- enable / disable ----------------------------------------------------------------------


def write_audit(
    conn: Connection,
    tenant_id: uuid.UUID | str,
    *,
    actor_type: str,
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    correlation_id: str | None = None,
) -> None:
    from sqlalchemy import text

    conn.execute(
        text(
            "INSERT INTO audit_log (tenant_id, actor_type, actor_id, action, target_type, "
            "target_id, reason, before, after, correlation_id) VALUES (:t, :at, :ai, :a, :tt, "
            ":ti, :r, CAST(:b AS jsonb), CAST(:af AS jsonb), :c)"
        ),
        {
            "t": str(tenant_id),
            "at": actor_type,
            "ai": actor_id,
            "a": action,
            "tt": target_type,
            "ti": target_id,
            "r": reason,
            "b": json.dumps(before) if before is not None else None,
            "af": json.dumps(after) if after is not None else None,
            "c": correlation_id,
        },
    )


def set_device_enabled(
    db: Engine,
    tenant_id: uuid.UUID | str,
    device_id: uuid.UUID | str,
    enabled: bool,
    actor: str,
    correlation_id: str | None = None,
) -> uuid.UUID | None:
    """Request enable/disable: returns the command id, or None if the tenant cannot see the
    device. The commands worker applies it to ThingsBoard."""
    from sqlalchemy import text

    tid = str(as_uuid(tenant_id))
    corr = correlation_id or str(uuid.uuid4())
    command = "enable" if enabled else "disable"
    with tenant_transaction(db, tid) as conn:
        device = _device(conn, device_id, lock=True)
        if device is None:
            return None
        conn.execute(
            text("UPDATE devices SET desired_enabled = :e, updated_at = now() WHERE id = :d"),
            {"e": enabled, "d": device.id},
        )
        command_id = conn.execute(
            text(
                "INSERT INTO device_commands (tenant_id, device_id, command, status, "
                "requested_by, correlation_id) VALUES (:t, :d, :c, 'requested', :a, :corr) "
                "RETURNING id"
            ),
            {"t": tid, "d": device.id, "c": command, "a": actor, "corr": corr},
        ).scalar_one()
        write_audit(
            conn,
            tid,
            actor_type="user",
            actor_id=actor,
            action=f"device.{command}.requested",
            target_type="device",
            target_id=str(device.id),
            before={"desired_enabled": device.desired_enabled},
            after={"desired_enabled": enabled, "command_id": str(command_id)},
            correlation_id=corr,
        )
        enqueue(
            conn,
            events.new_event(
                events.DEVICE_COMMAND_REQUESTED,
                tid,
                {"command_id": str(command_id), "device_id": str(device.id), "command": command},
                producer=PRODUCER,
                correlation_id=corr,
            ),
        )
    return as_uuid(command_id)


@dataclass(frozen=True)
class CommandTarget:
    command: CommandView
    device: DeviceView


def command_target(
    db: Engine, tenant_id: uuid.UUID | str, command_id: uuid.UUID | str
) -> CommandTarget | None:
    """The command and its device, or None when either is not visible to this tenant."""
    with tenant_transaction(db, tenant_id) as conn:
        command = _command(conn, command_id)
        if command is None:
            return None
        device = _device(conn, command.device_id)
    return CommandTarget(command, device) if device else None


def finish_command(
    db: Engine,
    tenant_id: uuid.UUID | str,
    command_id: uuid.UUID | str,
    *,
    status: str,
    result: dict[str, Any],
    error: str | None = None,
    reported_enabled: bool | None = None,
    producer: str = PRODUCER,
) -> bool:
    """Record the outcome once: status, device's reported state, audit row and the completed
    event in one transaction. False when the command was already finished (a redelivery)."""
    from sqlalchemy import text

    if status not in ("completed", "failed"):
        raise ValueError(f"status {status!r}")
    tid = str(as_uuid(tenant_id))
    with tenant_transaction(db, tid) as conn:
        command = _command(conn, command_id, lock=True)
        if command is None or command.status != "requested":
            return False
        conn.execute(
            text(
                "UPDATE device_commands SET status = :s, completed_at = now(), error = :e, "
                "result = :r WHERE id = :c"
            ),
            {"s": status, "e": error, "r": json.dumps(result), "c": command.id},
        )
        if reported_enabled is not None:
            conn.execute(
                text("UPDATE devices SET reported_enabled = :e, updated_at = now() WHERE id = :d"),
                {"e": reported_enabled, "d": command.device_id},
            )
        write_audit(
            conn,
            tid,
            actor_type="system",
            actor_id=producer,
            action=f"device.{command.command}.{status}",
            target_type="device",
            target_id=str(command.device_id),
            after={"command_id": str(command.id), **result},
            reason=error,
            correlation_id=command.correlation_id,
        )
        enqueue(
            conn,
            events.new_event(
                events.DEVICE_COMMAND_COMPLETED,
                tid,
                {
                    "command_id": str(command.id),
                    "device_id": str(command.device_id),
                    "command": command.command,
                    "status": status,
                    "error": error,
                    **{k: v for k, v in result.items() if k in ("applied", "remote", "reason")},
                },
                producer=producer,
                correlation_id=command.correlation_id,
                event_id=events.derived_event_id("command.completed", command.id),
            ),
        )
    return True


# --- UbiBot sync -----------------------------------------------------------------------------

# psycopg adapts a list of long strings slowly (about 1.7 s for 10,000 metadata documents,
# more than the insert itself), so the metadata travels as ONE string joined with the ASCII
# record separator, which json.dumps never emits raw (it escapes control characters).
RECORD_SEP = "\x1e"
_UPSERT = """
INSERT INTO devices (tenant_id, provider, external_id, name, kind, metadata, last_seen_at,
                     synced_at)
SELECT %(t)s::uuid, 'ubibot', x.external_id, x.name, %(kind)s, x.metadata::jsonb,
       x.last_seen_at, now()
FROM unnest(%(ext)s::text[], %(names)s::text[], string_to_array(%(metas)s, chr(30)),
            %(seen)s::timestamptz[])
     AS x(external_id, name, metadata, last_seen_at)
ON CONFLICT (tenant_id, provider, external_id) DO UPDATE
SET name = EXCLUDED.name, metadata = EXCLUDED.metadata, last_seen_at = EXCLUDED.last_seen_at,
    synced_at = now(), updated_at = now()
WHERE (devices.name, devices.metadata, devices.last_seen_at)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.metadata, EXCLUDED.last_seen_at)
RETURNING (xmax = 0) AS inserted
"""


def upsert_channels(
    conn: Connection,
    tenant_id: uuid.UUID | str,
    channels: Sequence[Channel],
    batch_size: int = DEFAULT_BATCH,
) -> SyncCounts:
    """Batched INSERT ... ON CONFLICT DO UPDATE in the caller's tenant transaction. Rows whose
    data did not change are not touched (the WHERE), which is how unchanged is counted."""
    raw = conn.connection.driver_connection  # the same transaction, app.tenant_id included
    assert raw is not None
    inserted = updated = 0
    with raw.cursor() as cur:
        for start in range(0, len(channels), batch_size):
            batch = channels[start : start + batch_size]
            cur.execute(
                _UPSERT,
                {
                    "t": str(tenant_id),
                    "kind": UBIBOT_KIND,
                    "ext": [c.channel_id for c in batch],
                    "names": [c.name for c in batch],
                    "metas": RECORD_SEP.join(
                        json.dumps(c.metadata, sort_keys=True, default=str) for c in batch
                    ),
                    "seen": [c.last_entry_date for c in batch],
                },
            )
            rows = cur.fetchall()
            ins = sum(1 for r in rows if r[0])
            inserted += ins
            updated += len(rows) - ins
    return SyncCounts(len(channels), inserted, updated, len(channels) - inserted - updated)


class SyncError(UbibotError):
    """A tenant's sync failed; the message names the tenant."""

    def __init__(self, tenant_id: str, cause: str, *, retryable: bool) -> None:
        super().__init__(f"tenant {tenant_id}: UbiBot sync failed: {cause}", retryable=retryable)
        self.tenant_id = tenant_id


def resolve_account_key(
    db: Engine, tenant_id: uuid.UUID | str, master_key: bytes | None = None
) -> str | None:
    from afasa_ops.platform.secrets import load_secret, master_key_from_env

    key = master_key if master_key is not None else master_key_from_env()
    return load_secret(db, tenant_id, UBIBOT_SECRET_PURPOSE, key)


def sync_ubibot(
    db: Engine,
    tenant_id: uuid.UUID | str,
    *,
    base_url: str,
    account_key: str | None = None,
    master_key: bytes | None = None,
    timeout_s: float = 10.0,
    correlation_id: str | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> SyncCounts:
    """Fetch the tenant's UbiBot channels and upsert them as devices, with the
    afasa.device.synced event, in one transaction. Fetching and validating happen first, so
    an error leaves nothing written."""
    tid = str(as_uuid(tenant_id))
    key = account_key or resolve_account_key(db, tid, master_key)
    if not key:
        raise SyncError(
            tid, f"no UbiBot account key (secret purpose {UBIBOT_SECRET_PURPOSE})", retryable=False
        )
    try:
        channels = UbibotClient(base_url, timeout_s).fetch_channels(key)
    except UbibotError as exc:
        raise SyncError(tid, exc.message, retryable=exc.retryable) from None
    with tenant_transaction(db, tid) as conn:
        counts = upsert_channels(conn, tid, channels, batch_size)
        enqueue(
            conn,
            events.new_event(
                events.DEVICE_SYNCED,
                tid,
                {"provider": "ubibot", **counts.as_dict()},
                producer=PRODUCER,
                correlation_id=correlation_id,
            ),
        )
    return counts
