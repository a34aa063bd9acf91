"""Reconciliation: the database and the stream agree on which jobs are still to be done.

A report `queued`/`processing` or a command `requested` normally has a live message on the
stream (pending, in flight, or waiting for its retry). When it has none (its delivery was
given up while the database could not record that, or a worker died with the last one) the
row would wait for ever. The sweep finds such rows and either announces the job again
(a new event through the outbox, so a worker picks it up) or, when it had its attempts or
announcements, fails it with a reason. A decided job (ready, completed, failed) is never
touched.

"No live message" is judged by time: the worker passes when the oldest message that may still
be live was stored (everything before the consumer's ack floor was acked or terminated); a
row whose every announcement was published before that, and which nobody touched for
`after_s`, has none.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from afasa_ops.platform import events
from afasa_ops.platform.db import tenant_ids, tenant_transaction
from afasa_ops.platform.outbox import enqueue

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

PRODUCER = "afasa-ops-reconcile"
# Announcements of one job (the first included) before the sweep fails it instead.
MAX_ANNOUNCEMENTS = 3


@dataclass(frozen=True)
class JobKind:
    name: str
    table: str
    subject: str
    id_field: str  # the event data field naming the row
    open_sql: str  # the row's "not decided yet" condition
    touched: str  # the row's last-change column
    attempts: str  # its attempts expression


REPORTS = JobKind(
    "report",
    "reports",
    events.REPORT_REQUESTED,
    "report_id",
    "status IN ('queued', 'processing')",
    "updated_at",
    "j.attempts",
)
COMMANDS = JobKind(
    "command",
    "device_commands",
    events.DEVICE_COMMAND_REQUESTED,
    "command_id",
    "status = 'requested'",
    "requested_at",
    "0",
)


@dataclass(frozen=True)
class Stuck:
    id: uuid.UUID
    attempts: int
    error: str | None
    announcements: int
    last_event: dict[str, Any]


def find_stuck(
    conn: Connection, kind: JobKind, *, live_since: datetime | None, after_s: float
) -> list[Stuck]:
    from sqlalchemy import text

    rows = conn.execute(
        text(
            f"SELECT j.id, {kind.attempts}, j.error, count(o.id), "
            "(array_agg(o.payload ORDER BY o.created_at DESC, o.id DESC))[1] "
            f"FROM {kind.table} j JOIN event_outbox o ON o.subject = :subject "
            f"AND o.payload->'data'->>'{kind.id_field}' = j.id::text "
            f"WHERE j.{kind.open_sql} "
            f"AND j.{kind.touched} < now() - make_interval(secs => :after) "
            "GROUP BY j.id "
            "HAVING bool_and(o.published_at IS NOT NULL) AND max(o.published_at) < "
            "coalesce(CAST(:live AS timestamptz), now()) - make_interval(secs => :after)"
        ),
        {"subject": kind.subject, "after": after_s, "live": live_since},
    ).all()
    return [Stuck(r[0], int(r[1] or 0), r[2], int(r[3]), _as_dict(r[4])) for r in rows]


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    loaded = json.loads(value) if value else {}
    return loaded if isinstance(loaded, dict) else {}


def _lock_open(conn: Connection, kind: JobKind, job_id: uuid.UUID) -> bool:
    """Lock the row if it is still undecided (a worker holding it is skipped, not waited on)."""
    from sqlalchemy import text

    row = conn.execute(
        text(
            f"SELECT 1 FROM {kind.table} WHERE id = :i AND {kind.open_sql} FOR UPDATE SKIP LOCKED"
        ),
        {"i": job_id},
    ).first()
    return row is not None


def reannounce(conn: Connection, tenant: str, kind: JobKind, job: Stuck) -> None:
    from sqlalchemy import text

    data = dict(job.last_event.get("data") or {kind.id_field: str(job.id)})
    enqueue(
        conn,
        events.new_event(
            kind.subject,
            tenant,
            data,
            producer=PRODUCER,
            correlation_id=job.last_event.get("correlation_id"),
            event_id=events.derived_event_id(f"{kind.name}.reannounce.{job.announcements}", job.id),
        ),
    )
    if kind is REPORTS:
        conn.execute(
            text("UPDATE reports SET status = 'queued', updated_at = now() WHERE id = :i"),
            {"i": job.id},
        )


def give_up_reason(job: Stuck) -> str:
    reason = (
        f"given up by reconciliation: no live message left after {job.attempts} attempt(s) "
        f"and {job.announcements} announcement(s)"
    )
    return f"{reason}; last error: {job.error}" if job.error else reason


def fail_report(conn: Connection, job: Stuck) -> None:
    from sqlalchemy import text

    conn.execute(
        text(
            "UPDATE reports SET status = 'failed', error = :e, finished_at = now(), "
            "updated_at = now() WHERE id = :i"
        ),
        {"e": give_up_reason(job)[:4000], "i": job.id},
    )


def sweep_tenant(
    db: Engine,
    tenant: uuid.UUID,
    kind: JobKind,
    *,
    live_since: datetime | None,
    after_s: float,
    max_attempts: int,
) -> tuple[int, int]:
    """(re-announced, failed) for one tenant (RLS scopes every statement to it)."""
    from afasa_ops.platform.devices import finish_command

    reannounced = failed = 0
    commands_to_fail: list[Stuck] = []
    with tenant_transaction(db, tenant) as conn:
        for job in find_stuck(conn, kind, live_since=live_since, after_s=after_s):
            if not _lock_open(conn, kind, job.id):
                continue
            if job.announcements < MAX_ANNOUNCEMENTS and job.attempts < max_attempts:
                reannounce(conn, str(tenant), kind, job)
                reannounced += 1
            elif kind is REPORTS:
                fail_report(conn, job)
                failed += 1
            else:
                commands_to_fail.append(job)
    # A command's failure is its own transaction (status, audit row, completed event), which
    # takes the row lock again: after the sweep's transaction let it go.
    for job in commands_to_fail:
        if finish_command(
            db,
            tenant,
            job.id,
            status="failed",
            result={"applied": "none", "remote": False},
            error=give_up_reason(job),
            producer=PRODUCER,
        ):
            failed += 1
    return reannounced, failed


def sweep_all(
    db: Engine,
    kind: JobKind,
    *,
    live_since: datetime | None,
    after_s: float,
    max_attempts: int,
) -> tuple[int, int]:
    total = (0, 0)
    for tenant in tenant_ids(db):
        r, f = sweep_tenant(
            db, tenant, kind, live_since=live_since, after_s=after_s, max_attempts=max_attempts
        )
        total = (total[0] + r, total[1] + f)
    return total
