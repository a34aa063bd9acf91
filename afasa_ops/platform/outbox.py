"""The transactional outbox: an event is written in the same transaction as the change it
announces, and relayed to JetStream afterwards. A crash between commit and publish leaves the
row unpublished, so the next sweep publishes it; a crash between publish and marking it
published republishes with the same Nats-Msg-Id, which JetStream (and idempotent handlers)
collapse to one effect.

The transaction also sends NOTIFY on CHANNEL, delivered at commit: workers listening there
(workers/outbox_wakeup.py) relay at once instead of at their next timed sweep."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afasa_ops.platform.db import tenant_ids, tenant_transaction
from afasa_ops.platform.events import Envelope

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

CHANNEL = "afasa_outbox"


def enqueue(conn: Connection, event: Envelope) -> bool:
    """Add the event to the outbox in the caller's transaction; False if already there."""
    from sqlalchemy import text

    result = conn.execute(
        text(
            "INSERT INTO event_outbox (tenant_id, event_id, subject, payload) "
            "VALUES (:t, :e, :s, CAST(:p AS jsonb)) ON CONFLICT (event_id) DO NOTHING"
        ),
        {
            "t": event.tenant_id,
            "e": event.event_id,
            "s": event.subject,
            "p": json.dumps(event.as_dict(), default=str),
        },
    )
    if not result.rowcount:
        return False
    conn.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})
    return True


@dataclass(frozen=True)
class Pending:
    row_id: Any
    event_id: str
    subject: str
    body: bytes


def pending(db: Engine, tenant_id: uuid.UUID | str, limit: int = 500) -> list[Pending]:
    from sqlalchemy import text

    with tenant_transaction(db, tenant_id) as conn:
        rows = conn.execute(
            text(
                "SELECT id, event_id, subject, payload FROM event_outbox "
                "WHERE published_at IS NULL ORDER BY created_at, id LIMIT :n"
            ),
            {"n": limit},
        ).all()
    return [
        Pending(r[0], str(r[1]), r[2], json.dumps(r[3], separators=(",", ":")).encode())
        for r in rows
    ]


def mark_published(db: Engine, tenant_id: uuid.UUID | str, row_ids: list[Any]) -> None:
    from sqlalchemy import bindparam, text

    if not row_ids:
        return
    with tenant_transaction(db, tenant_id) as conn:
        conn.execute(
            text(
                "UPDATE event_outbox SET published_at = now(), attempts = attempts + 1, "
                "last_error = NULL WHERE id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": row_ids},
        )


def mark_failed(db: Engine, tenant_id: uuid.UUID | str, row_id: Any, error: str) -> None:
    from sqlalchemy import text

    with tenant_transaction(db, tenant_id) as conn:
        conn.execute(
            text("UPDATE event_outbox SET attempts = attempts + 1, last_error = :e WHERE id = :i"),
            {"e": error[:2000], "i": row_id},
        )


def tenants_with_pending(db: Engine) -> list[uuid.UUID]:
    """Tenants to sweep. RLS hides other tenants' outbox rows, so the sweep goes per tenant."""
    return tenant_ids(db)
