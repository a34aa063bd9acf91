"""The one way tenant data is touched: a transaction that first sets `app.tenant_id`
transaction-locally, so row-level security scopes every statement and nothing leaks to the
next user of a pooled connection. Engines come from infra/postgres.make_engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


def as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


@contextmanager
def tenant_transaction(db: Engine, tenant_id: uuid.UUID | str) -> Iterator[Connection]:
    """One transaction scoped to a tenant: commits on success, rolls back on error."""
    from sqlalchemy import text

    tid = str(as_uuid(tenant_id))
    with db.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tid})
        yield conn


@contextmanager
def plain_transaction(db: Engine) -> Iterator[Connection]:
    """A transaction with no tenant: only tables without RLS (tenants) are visible."""
    with db.begin() as conn:
        yield conn


def tenant_ids(db: Engine) -> list[uuid.UUID]:
    """Every tenant id (the tenants table is readable by the application role)."""
    from sqlalchemy import text

    with plain_transaction(db) as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM tenants ORDER BY id"))]
