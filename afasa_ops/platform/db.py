"""The application-role engine and the one way tenant data is touched: a transaction that
first sets `app.tenant_id` transaction-locally, so row-level security scopes every statement
and nothing leaks to the next user of a pooled connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from afasa_ops.config import DatabaseSection


def sqlalchemy_url(dsn: str) -> str:
    """postgresql://... -> postgresql+psycopg://... (psycopg 3), leaving explicit drivers."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


@dataclass(frozen=True)
class EngineTimeouts:
    """Bounds on every wait of an application engine ([database] keys; 0 = no limit).

    connect_s: libpq connect_timeout; pool_s: wait for a pooled connection; statement_s:
    statement_timeout of each session (server side); keepalive_s: TCP keepalive idle time,
    and a third of tcp_user_timeout, so a peer gone silent is noticed in about 3x this."""

    connect_s: float = 5.0
    pool_s: float = 30.0
    statement_s: float = 0.0
    keepalive_s: float = 10.0

    def connect_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.connect_s > 0:
            args["connect_timeout"] = max(1, round(self.connect_s))
        if self.keepalive_s > 0:
            idle = max(1, round(self.keepalive_s))
            args.update(
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=idle,
                keepalives_count=3,
                tcp_user_timeout=idle * 3000,
            )
        if self.statement_s > 0:
            args["options"] = f"-c statement_timeout={int(self.statement_s * 1000)}"
        return args


def engine_timeouts(section: DatabaseSection, *, statement_s: float) -> EngineTimeouts:
    return EngineTimeouts(
        connect_s=section.connect_timeout_s,
        pool_s=section.pool_timeout_s,
        statement_s=statement_s,
        keepalive_s=section.keepalive_s,
    )


def make_engine(
    dsn: str,
    *,
    pool_size: int = 5,
    application_name: str = "afasa-ops",
    timeouts: EngineTimeouts | None = None,
) -> Engine:
    from sqlalchemy import create_engine

    t = timeouts or EngineTimeouts()
    return create_engine(
        sqlalchemy_url(dsn),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=t.pool_s if t.pool_s > 0 else None,
        connect_args={"application_name": application_name, **t.connect_args()},
    )


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
