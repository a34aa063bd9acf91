"""Tell a stubbed AFASA service from a working one by its effects, not by reading its code.

Each probe calls one route through the deployment (usually Traefik) as the checks' tenant and
looks at what changed where a working implementation leaves a trace: the tenant's device rows
after a sync, the device's desired state and a command row after a disable, a 202 and an
`afasa.report.requested` event after a report request. The probes write (that is how effects
are seen), so callers run them only when asked; the sync and disable probes restore what they
changed and say how in the result.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afasa_ops.errors import AfasaOpsError
from afasa_ops.infra import http
from afasa_ops.infra.postgres import Timeouts, connect, translated
from afasa_ops.platform.events import REPORT_REQUESTED
from afasa_ops.redact import redactor

EXCERPT_CHARS = 300

STUB = "stub"
WORKING = "working"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ProbeTarget:
    """Where and as whom to probe; routes may hold `{device_id}`."""

    base_url: str
    token: str
    tenant_id: str
    admin_dsn: str
    nats_url: str
    sync_route: str
    disable_route: str
    enable_route: str
    generate_route: str
    http_timeout_s: float = 15.0
    db_timeouts: Timeouts = field(default_factory=Timeouts)
    # How long to watch for an effect after a 2xx answer.
    settle_s: float = 3.0
    # A report request slower than this blocked the API on rendering.
    slow_s: float = 5.0
    # How long to wait for afasa.report.requested after the request.
    event_wait_s: float = 10.0


@dataclass
class ProbeResult:
    probe: str  # sync | device_state | report
    route: str
    verdict: str  # stub | working | inconclusive
    evidence: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def stub(self) -> bool:
        return self.verdict == STUB


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str
    body: Any
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def shown(self, method: str, route: str) -> str:
        return f"{method} {route} -> {self.status} in {self.elapsed_s:.2f}s: {self.excerpt}"


def call(target: ProbeTarget, method: str, route: str, body: Any = None) -> Answer:
    """One authenticated request; transport failures raise (HttpFailure)."""
    started = time.monotonic()
    response = http.request(
        method,
        target.base_url.rstrip("/") + route,
        timeout_s=target.http_timeout_s,
        what=f"{method} {route}",
        headers={"Authorization": f"Bearer {target.token}"},
        json=body,
    )
    elapsed = time.monotonic() - started
    text = " ".join(response.text.split())
    excerpt = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return Answer(response.status_code, redactor.redact(excerpt), parsed, elapsed)


# -- database observations ----------------------------------------------------------------


class Observer:
    """One autocommit admin connection for a probe's reads (the admin sees every row: RLS
    hides none), opened on first use and closed by the probe."""

    def __init__(self, target: ProbeTarget) -> None:
        self.target = target
        self._conn: Any = None

    def rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        dsn = self.target.admin_dsn
        with translated(dsn, "reading what a probe changed"):
            if self._conn is None:
                self._conn = connect(dsn, timeouts=self.target.db_timeouts)
            return list(self._conn.execute(sql, params).fetchall())

    def has_table(self, name: str) -> bool:
        return bool(self.rows("SELECT to_regclass(%(n)s) IS NOT NULL", {"n": name})[0][0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def device_rows(db: Observer) -> dict[str, dict[str, Any]]:
    """The tenant's device rows, whole, by id."""
    rows = db.rows(
        "SELECT id::text, to_jsonb(d) FROM devices d WHERE tenant_id = CAST(%(t)s AS uuid)",
        {"t": db.target.tenant_id},
    )
    return {str(r[0]): dict(r[1]) for r in rows}


def _poll(settle_s: float, changed: Callable[[], bool]) -> bool:
    """True as soon as changed() is; False when settle_s passes without it."""
    deadline = time.monotonic() + settle_s
    wait = 0.05
    while True:
        if changed():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        wait = min(wait * 1.5, 0.5)


# -- the sync probe -----------------------------------------------------------------------


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

    if not _poll(target.settle_s, changed):
        found = answer.body.get("devices_found") if isinstance(answer.body, dict) else None
        if found == 0:
            result.evidence.append("it reports 0 devices found: no effect to expect")
            return result
        result.verdict = STUB
        result.evidence.append(
            f"the tenant's {len(before)} device rows are unchanged after {target.settle_s:g}s "
            "(none inserted, no synced_at or updated_at moved)"
        )
        return result
    inserted = sorted(set(after) - set(before))
    updated = sorted(i for i in before if i in after and after[i] != before[i])
    result.verdict = WORKING
    result.evidence.append(f"device rows changed: {len(inserted)} inserted, {len(updated)} updated")
    result.restored = restore_devices(target, before, inserted, updated)
    return result


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


# -- the device state probe ---------------------------------------------------------------


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
    commands_before = _command_count(db, device_id) if has_commands else 0
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
            _command_count(db, device_id) if has_commands else 0,
        )
        return state != (enabled_before, commands_before)

    if not _poll(target.settle_s, changed):
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
    return result


def _switch_back(
    target: ProbeTarget, db: Observer, device_id: str, enabled: bool, route_t: str
) -> list[str]:
    route = route_t.replace("{device_id}", device_id)
    answer = call(target, "POST", route)
    back = _poll(target.settle_s, lambda: _desired(db, device_id) == enabled)
    said = f"switched back with {answer.shown('POST', route)}"
    if not back:
        return [said, f"desired_enabled is NOT back to {str(enabled).lower()}: check it"]
    return [
        said,
        f"desired_enabled back to {str(enabled).lower()}",
        "the two command rows stay as the device's history",
    ]


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


def _command_count(db: Observer, device_id: str) -> int:
    rows = db.rows(
        "SELECT count(*) FROM device_commands WHERE device_id = CAST(%(d)s AS uuid)",
        {"d": device_id},
    )
    return int(rows[0][0])


# -- the report probe ---------------------------------------------------------------------


def probe_report(target: ProbeTarget, db: Observer) -> ProbeResult:
    """Request a small report: 200 instead of 202, a slow answer, or no
    afasa.report.requested event for the tenant each says the report is made in the request."""
    route = target.generate_route
    result = ProbeResult("report", route, INCONCLUSIVE)
    try:
        import nats  # noqa: F401  (the [service] extra)
    except ImportError:
        nats_missing = True
    else:
        nats_missing = False
    body = {"type": "daily", "format": "csv"}
    if nats_missing:
        answer, events = call(target, "POST", route, body), None
    else:
        answer, events = asyncio.run(_request_watching(target, route, body))
    result.evidence.append(answer.shown("POST", route))
    if not answer.ok:
        result.evidence.append("not a success answer: nothing to judge by effects")
        return result
    reasons = []
    if answer.status == 200:
        reasons.append("answered 200 with the result, not 202 with a queued report")
    if answer.elapsed_s > target.slow_s:
        reasons.append(f"took {answer.elapsed_s:.1f}s (over {target.slow_s:g}s): it rendered")
    if events is None:
        result.evidence.append(
            f"{REPORT_REQUESTED} not watched: nats-py is missing (pip install 'afasa-ops[service]')"
        )
    elif not events:
        reasons.append(f"no {REPORT_REQUESTED} event for the tenant in {target.event_wait_s:g}s")
    else:
        result.evidence.append(f"{REPORT_REQUESTED} seen: {events[0]}")
    result.evidence += reasons
    result.verdict = STUB if reasons else WORKING
    report_id = answer.body.get("report_id") if isinstance(answer.body, dict) else None
    if result.verdict == WORKING and report_id:
        result.restored.append(
            f"report {report_id} stays: a daily csv report of the tenant, made by its worker"
        )
    return result


async def _request_watching(
    target: ProbeTarget, route: str, body: dict[str, Any]
) -> tuple[Answer, list[str]]:
    """The request made while subscribed to afasa.report.requested; the tenant's events seen
    until one names the report or event_wait_s passes."""
    from afasa_ops.infra import nats as nats_driver

    async with nats_driver.watching(target.nats_url, REPORT_REQUESTED) as seen:
        answer = await asyncio.to_thread(call, target, "POST", route, body)
        report_id = answer.body.get("report_id") if isinstance(answer.body, dict) else None
        deadline = time.monotonic() + (target.event_wait_s if answer.ok else 0)
        while True:
            mine = [
                e for e in (_event(m) for m in seen) if str(e.get("tenant_id")) == target.tenant_id
            ]
            if any(_names(e, report_id) for e in mine) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
    return answer, [_describe(e) for e in mine]


def _event(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _names(event: dict[str, Any], report_id: Any) -> bool:
    data = event.get("data")
    return report_id is None or (isinstance(data, dict) and data.get("report_id") == report_id)


def _describe(event: dict[str, Any]) -> str:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    return f"event {event.get('event_id')} report {data.get('report_id')}"  # type: ignore[union-attr]


PROBES: dict[str, Callable[[ProbeTarget, Observer], ProbeResult]] = {
    "sync": probe_sync,
    "device_state": probe_device_state,
    "report": probe_report,
}


def run_probe(name: str, target: ProbeTarget) -> ProbeResult:
    """One probe; a driver failure (connection refused, database down) is inconclusive with
    the error as evidence, never an exception."""
    db = Observer(target)
    try:
        return PROBES[name](target, db)
    except AfasaOpsError as exc:
        route = {
            "sync": target.sync_route,
            "device_state": target.disable_route,
            "report": target.generate_route,
        }[name]
        return ProbeResult(name, route, INCONCLUSIVE, [redactor.redact(str(exc))])
    finally:
        db.close()
