"""The sync probe: does `POST [checks] sync_route` save anything?"""

from __future__ import annotations

import json
import time
from typing import Any

from afasa_ops.infra.postgres import connect, translated
from afasa_ops.platform.probes.base import (
    INCONCLUSIVE,
    STUB,
    WORKING,
    Observer,
    ProbeResult,
    ProbeTarget,
    call,
    device_rows,
    poll,
)


def probe_sync(target: ProbeTarget, db: Observer) -> ProbeResult:
    """POST the sync; a 2xx that leaves the tenant's device rows as they were is a stub."""
    route = target.sync_route
    result = ProbeResult("sync", route, INCONCLUSIVE)
    has_devices = db.has_table("devices")
    before = device_rows(db) if has_devices else {}
    answer = call(target, "POST", route)
    result.evidence.append(answer.shown("POST", route))
    if not answer.ok:
        result.evidence.append("not a success answer: nothing to judge by effects")
        return result
    if not has_devices:
        result.verdict = STUB
        result.evidence.append("there is no devices table: the sync cannot have saved anything")
        return result
    after: dict[str, dict[str, Any]] = {}

    def changed() -> bool:
        nonlocal after
        after = device_rows(db)
        return after != before

    if not poll(target.settle_s, changed):
        found = answer.body.get("devices_found") if isinstance(answer.body, dict) else None
        if found == 0:
            result.evidence.append("it reports 0 devices found: no effect to expect")
            return result
        result.evidence.append(
            f"the tenant's {len(before)} device rows are unchanged after {target.settle_s:g}s "
            "(none inserted, no synced_at or updated_at moved)"
        )
        return _judge_by_a_marked_row(target, db, before, result)
    after = _settled(db, after, target.settle_s)
    inserted = sorted(set(after) - set(before))
    updated = sorted(i for i in before if i in after and after[i] != before[i])
    result.verdict = WORKING
    result.evidence.append(f"device rows changed: {len(inserted)} inserted, {len(updated)} updated")
    result.restored = restore_devices(target, before, inserted, updated)
    return result


MARK = " (marked by an afasa-ops probe)"


def _judge_by_a_marked_row(
    target: ProbeTarget, db: Observer, before: dict[str, dict[str, Any]], result: ProbeResult
) -> ProbeResult:
    """Unchanged rows may only mean the registry already matches UbiBot. So mark one UbiBot
    device's name, sync again, and see whether the sync puts UbiBot's name back: a working
    sync does, a stub leaves the mark. The row's columns are put back either way."""
    marked = sorted(i for i, row in before.items() if row.get("provider") == "ubibot")
    if not marked:
        result.verdict = STUB  # nothing to compare with: rows were neither made nor kept
        return result
    device_id, route = marked[0], target.sync_route
    name = f"{before[device_id].get('name') or ''}{MARK}"
    _set_name(target, device_id, name)
    try:
        again = call(target, "POST", route)
        result.evidence.append(
            f"device {device_id} renamed {name!r}, then " + again.shown("POST", route)
        )
        put_back = poll(
            target.settle_s, lambda: device_rows(db).get(device_id, {}).get("name") != name
        )
    finally:
        restore_devices(target, before, [], [device_id])
    # Its updated_at trigger stamps the restore itself: that column records the probe.
    result.restored.append(f"device {device_id}: its columns put back (updated_at stays new)")
    if put_back:
        result.verdict = WORKING
        result.evidence.append("the sync put UbiBot's name back: the registry was up to date")
    else:
        result.verdict = STUB
        result.evidence.append(f"the mark is still there after {target.settle_s:g}s")
    return result


def _set_name(target: ProbeTarget, device_id: str, name: str) -> None:
    with (
        translated(target.admin_dsn, "marking a device row for the sync probe"),
        connect(target.admin_dsn, timeouts=target.db_timeouts) as conn,
    ):
        conn.execute(
            "UPDATE devices SET name = %(n)s WHERE id = CAST(%(id)s AS uuid)",
            {"n": name, "id": device_id},
        )


def _settled(
    db: Observer, seen: dict[str, dict[str, Any]], settle_s: float
) -> dict[str, dict[str, Any]]:
    """The rows once two reads 0.2 s apart agree (a sync may still be writing its batches),
    or the last read when settle_s passes: everything the sync wrote is restored, not only
    its first batch."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = device_rows(db)
        if now == seen:
            return now
        seen = now
    return seen


def restore_devices(
    target: ProbeTarget,
    before: dict[str, dict[str, Any]],
    inserted: list[str],
    updated: list[str],
) -> list[str]:
    """Delete the rows the sync inserted (unless something refers to them now) and put the
    updated rows' columns back, in one transaction."""
    done: list[str] = []
    with (
        translated(target.admin_dsn, "restoring the device rows a probe changed"),
        connect(target.admin_dsn, timeouts=target.db_timeouts, autocommit=False) as conn,
        conn.transaction(),
    ):
        if inserted:
            cur = conn.execute(
                "DELETE FROM devices d WHERE d.id = ANY(CAST(%(ids)s AS uuid[])) "
                "AND NOT EXISTS (SELECT 1 FROM device_commands c WHERE c.device_id = d.id)"
                if _has_table_on(conn, "device_commands")
                else "DELETE FROM devices d WHERE d.id = ANY(CAST(%(ids)s AS uuid[]))",
                {"ids": inserted},
            )
            done.append(f"deleted {cur.rowcount} of {len(inserted)} device rows the sync inserted")
        for device_id in updated:
            old = before[device_id]
            columns = [c for c in old if c not in ("id", "tenant_id")]
            names = ", ".join(f'"{c}"' for c in columns)
            picked = ", ".join(f'r."{c}"' for c in columns)
            conn.execute(
                f"UPDATE devices d SET ({names}) = (SELECT {picked} FROM "
                "jsonb_populate_record(NULL::devices, CAST(%(old)s AS jsonb)) r) "
                "WHERE d.id = CAST(%(id)s AS uuid)",
                {"old": json.dumps(old), "id": device_id},
            )
        if updated:
            done.append(f"put back the columns of {len(updated)} device rows the sync updated")
    done.append("events and audit rows the sync wrote stay (they record what happened)")
    return done


def _has_table_on(conn: Any, name: str) -> bool:
    return bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0])
