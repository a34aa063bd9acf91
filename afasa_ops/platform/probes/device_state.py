"""The device state probe: does disable (or enable) record anything?"""

from __future__ import annotations

import uuid

from afasa_ops.platform.probes.base import (
    INCONCLUSIVE,
    STUB,
    WORKING,
    Observer,
    ProbeResult,
    ProbeTarget,
    call,
    poll,
)


def probe_device_state(target: ProbeTarget, db: Observer) -> ProbeResult:
    """Disable (or enable) one device: a 2xx with no change of its desired state and no
    command row is a stub. A working one is switched back through the opposite route."""
    has_devices = db.has_table("devices")
    picked = (
        db.rows(
            "SELECT id::text, desired_enabled FROM devices WHERE tenant_id = CAST(%(t)s AS uuid) "
            "ORDER BY desired_enabled DESC, created_at LIMIT 1",
            {"t": target.tenant_id},
        )
        if has_devices
        else []
    )
    if not picked:
        return _unknown_device(target, has_devices)
    device_id, enabled_before = str(picked[0][0]), bool(picked[0][1])
    route_of = {True: target.enable_route, False: target.disable_route}
    route = route_of[not enabled_before].replace("{device_id}", device_id)
    result = ProbeResult("device_state", route, INCONCLUSIVE)
    has_commands = db.has_table("device_commands")
    ids_before = _command_ids(db, device_id) if has_commands else set()
    commands_before = len(ids_before)
    answer = call(target, "POST", route)
    result.evidence.append(answer.shown("POST", route))
    if not answer.ok:
        result.evidence.append("not a success answer: nothing to judge by effects")
        return result
    state: tuple[bool, int] = (enabled_before, commands_before)

    def changed() -> bool:
        nonlocal state
        state = (
            _desired(db, device_id),
            len(_command_ids(db, device_id)) if has_commands else 0,
        )
        return state != (enabled_before, commands_before)

    if not poll(target.settle_s, changed):
        result.verdict = STUB
        result.evidence.append(
            f"device {device_id}: desired_enabled still {str(enabled_before).lower()} and no "
            f"command row after {target.settle_s:g}s"
            + ("" if has_commands else " (there is no device_commands table)")
        )
        return result
    result.verdict = WORKING
    result.evidence.append(
        f"device {device_id}: desired_enabled {str(enabled_before).lower()} -> "
        f"{str(state[0]).lower()}, command rows {commands_before} -> {state[1]}"
    )
    result.restored = _switch_back(target, db, device_id, enabled_before, route_of[enabled_before])
    if has_commands:
        result.restored += _remove_commands(target, db, _command_ids(db, device_id) - ids_before)
    return result


def _switch_back(
    target: ProbeTarget, db: Observer, device_id: str, enabled: bool, route_t: str
) -> list[str]:
    route = route_t.replace("{device_id}", device_id)
    answer = call(target, "POST", route)
    back = poll(target.settle_s, lambda: _desired(db, device_id) == enabled)
    said = f"switched back with {answer.shown('POST', route)}"
    if not back:
        return [said, f"desired_enabled is NOT back to {str(enabled).lower()}: check it"]
    return [said, f"desired_enabled back to {str(enabled).lower()}"]


# The probe's own command rows that may go: settled ones (a worker applied or failed them), or
# all of them when none was applied by the deadline (no worker acts on them; a worker looks a
# command up before applying it, so a deleted one never is). A pending undo of an applied
# command stays: deleting it would leave the device switched.
_DELETE_SETTLED = (
    "DELETE FROM device_commands WHERE id = ANY(CAST(%(ids)s AS uuid[])) AND (status <> "
    "'requested' OR NOT EXISTS (SELECT 1 FROM device_commands WHERE id = ANY(CAST(%(ids)s AS "
    "uuid[])) AND status = 'completed')) RETURNING command, status"
)


def _remove_commands(target: ProbeTarget, db: Observer, created: set[str]) -> list[str]:
    """Delete the command rows the probe's two requests created, once a worker has settled
    them (waiting up to settle_s), or when no worker applied any of them."""
    if not created:
        return []
    ids = sorted(created)
    poll(target.settle_s, lambda: _pending(db, ids) == 0)
    deleted = db.rows(_DELETE_SETTLED, {"ids": ids})
    said = [f"deleted the {len(deleted)} command row(s) the probe created"]
    if len(deleted) < len(ids):
        said.append(
            f"{len(ids) - len(deleted)} command row(s) of the undo still pending stay: "
            "a worker applies them"
        )
    return said


def _pending(db: Observer, ids: list[str]) -> int:
    rows = db.rows(
        "SELECT count(*) FROM device_commands WHERE status = 'requested' "
        "AND id = ANY(CAST(%(ids)s AS uuid[]))",
        {"ids": ids},
    )
    return int(rows[0][0])


def _unknown_device(target: ProbeTarget, has_devices: bool) -> ProbeResult:
    """No device to switch: ask for one that cannot exist. A working service answers 404
    and writes nothing; a stub answers success."""
    device_id = str(uuid.uuid4())
    route = target.disable_route.replace("{device_id}", device_id)
    result = ProbeResult("device_state", route, INCONCLUSIVE)
    answer = call(target, "POST", route)
    result.evidence.append(answer.shown("POST", route))
    why = "the tenant has no device" if has_devices else "there is no devices table"
    if answer.ok:
        result.verdict = STUB
        result.evidence.append(f"{why}, so {device_id} cannot exist, yet it answered success")
    elif answer.status == 404:
        result.verdict = WORKING
        result.evidence.append(f"{why}; an unknown device is refused with 404")
    return result


def _desired(db: Observer, device_id: str) -> bool:
    rows = db.rows(
        "SELECT desired_enabled FROM devices WHERE id = CAST(%(d)s AS uuid)",
        {"d": device_id},
    )
    return bool(rows[0][0]) if rows else False


def _command_ids(db: Observer, device_id: str) -> set[str]:
    rows = db.rows(
        "SELECT id::text FROM device_commands WHERE device_id = CAST(%(d)s AS uuid)",
        {"d": device_id},
    )
    return {str(r[0]) for r in rows}
