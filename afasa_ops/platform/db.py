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
    """Every tenant id, for the workers that go over all tenants. The application role sees
    only its current tenant's row of `tenants` (migration 0008): the ids come from
    afasa_tenant_ids(), which returns ids and nothing else. Before 0008 (no function yet) the
    table itself is read."""
    from sqlalchemy import text

    with plain_transaction(db) as conn:
        has_function = conn.execute(
            text("SELECT to_regprocedure('afasa_tenant_ids()') IS NOT NULL")
        ).scalar_one()
        sql = "SELECT * FROM afasa_tenant_ids()" if has_function else "SELECT id FROM tenants"
        return sorted(uuid.UUID(str(row[0])) for row in conn.execute(text(sql)))
