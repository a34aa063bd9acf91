"""A fresh database migrated with the project's own migrator, and a private NOBYPASSRLS
application role to reach it through (so row-level security is really enforced)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.services import PG_ADMIN_DSN, dsn_for, fresh_database


@dataclass(frozen=True)
class PlatformDb:
    admin_dsn: str
    app_dsn: str
    app_role: str


def _with_user(dsn: str, user: str) -> str:
    scheme, rest = dsn.split("://", 1)
    hostpart = rest.split("@", 1)[1] if "@" in rest else rest
    return f"{scheme}://{user}@{hostpart}"


@contextmanager
def platform_database(
    prefix: str = "afasa_wk", server_dsn: str = PG_ADMIN_DSN
) -> Iterator[PlatformDb]:
    import psycopg

    from afasa_ops.infra.postgres import Postgres
    from afasa_ops.schema.migrator import migrate
    from afasa_ops.schema.settings import SchemaSettings

    role = f"afasa_app_t{uuid.uuid4().hex[:8]}"
    with fresh_database(prefix, server_dsn) as admin:
        pg = Postgres(admin)
        try:
            migrate(pg, SchemaSettings(admin_dsn=admin, app_role=role, vector="off"))
        finally:
            pg.close()
        try:
            yield PlatformDb(admin, _with_user(admin, role), role)
        finally:
            with (
                contextlib.suppress(psycopg.OperationalError),
                psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn,
            ):
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = %s AND pid <> pg_backend_pid()",
                    (role,),
                )
    with (
        contextlib.suppress(psycopg.OperationalError),
        psycopg.connect(
            dsn_for("postgres", server_dsn), autocommit=True, connect_timeout=5
        ) as conn,
    ):
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def add_tenant(admin_dsn: str, name: str, tenant_id: uuid.UUID | None = None) -> uuid.UUID:
    import psycopg

    tid = tenant_id or uuid.uuid4()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tid, name))
    return tid
