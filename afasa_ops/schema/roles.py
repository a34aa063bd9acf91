"""The application role: LOGIN NOSUPERUSER NOBYPASSRLS, owning nothing, only the grants needed."""

from __future__ import annotations

from dataclasses import dataclass

from afasa_ops.infra.postgres import Postgres, translated
from afasa_ops.schema.inspect import LEDGER

TENANT_TABLES_SQL = """
SELECT c.relname FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
"""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class RoleState:
    exists: bool
    login: bool = False
    superuser: bool = False
    bypassrls: bool = False
    owned_tables: tuple[str, ...] = ()


def role_state(pg: Postgres, role: str) -> RoleState:
    with translated(pg.dsn, f"reading role {role}"):
        row = (
            pg.conn()
            .execute(
                "SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s",
                (role,),
            )
            .fetchone()
        )
        if row is None:
            return RoleState(False)
        owned = tuple(
            r[0]
            for r in pg.conn().execute(
                "SELECT relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
                " WHERE rolname = %s) AND relnamespace = current_schema()::regnamespace"
                " AND relkind IN ('r', 'p') ORDER BY relname",
                (role,),
            )
        )
    return RoleState(True, bool(row[0]), bool(row[1]), bool(row[2]), owned)


def tenant_tables(pg: Postgres) -> list[str]:
    with translated(pg.dsn, "listing tenant tables"):
        return sorted(r[0] for r in pg.conn().execute(TENANT_TABLES_SQL))


def role_statements(
    role: str, password: str | None, tables: list[str], owned: tuple[str, ...], *, render: bool
) -> list[str]:
    """The SQL that converges the role; with render=True the password is shown masked."""
    r = quote_ident(role)
    stmts = [
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
        f"{quote_literal(role)}) THEN CREATE ROLE {r} LOGIN; END IF; END $$",
    ]
    attrs = f"ALTER ROLE {r} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
    if password:
        attrs += " PASSWORD " + ("'***'" if render else quote_literal(password))
    stmts.append(attrs)
    # A role that owns a table escapes FORCE-less RLS and can disable it: give it back.
    stmts += [f"ALTER TABLE {quote_ident(t)} OWNER TO CURRENT_USER" for t in owned]
    stmts.append(f"GRANT USAGE ON SCHEMA public TO {r}")
    stmts.append(f"GRANT SELECT ON tenants TO {r}")
    stmts += [f"GRANT SELECT, INSERT, UPDATE, DELETE ON {quote_ident(t)} TO {r}" for t in tables]
    stmts.append(f"REVOKE ALL ON {LEDGER} FROM {r}")
    return stmts


def ensure_app_role(pg: Postgres, role: str, password: str | None) -> list[str]:
    """Create or correct the role and its grants; returns the statements run (masked)."""
    state = role_state(pg, role)
    tables = tenant_tables(pg)
    run = role_statements(role, password, tables, state.owned_tables, render=False)
    shown = role_statements(role, password, tables, state.owned_tables, render=True)
    conn = pg.conn()
    with translated(pg.dsn, f"ensuring role {role}"), conn.transaction():
        if LEDGER not in _tables(pg):
            run = [s for s in run if LEDGER not in s]
            shown = [s for s in shown if LEDGER not in s]
        for stmt in run:
            conn.execute(stmt)  # type: ignore[arg-type]
    return shown


def _tables(pg: Postgres) -> set[str]:
    return {
        r[0]
        for r in pg.conn().execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    }


def missing_grants(pg: Postgres, role: str) -> list[str]:
    """Tenant tables (and tenants) the role cannot use as the services need."""
    sql = f"""
    SELECT t.relname FROM ({TENANT_TABLES_SQL}) t
    WHERE NOT (has_table_privilege(%(r)s, t.relname, 'SELECT')
               AND has_table_privilege(%(r)s, t.relname, 'INSERT')
               AND has_table_privilege(%(r)s, t.relname, 'UPDATE'))
    UNION ALL
    SELECT 'tenants' WHERE to_regclass('tenants') IS NOT NULL
      AND NOT has_table_privilege(%(r)s, 'tenants', 'SELECT')
    """
    with translated(pg.dsn, f"reading grants of {role}"):
        return [r[0] for r in pg.conn().execute(sql, {"r": role})]  # type: ignore[arg-type]
