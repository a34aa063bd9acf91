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


def role_state(pg: Postgres, role: str, *, owned: bool = True) -> RoleState:
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
        if not owned:
            return RoleState(True, bool(row[0]), bool(row[1]), bool(row[2]))
        tables = tuple(
            r[0]
            for r in pg.conn().execute(
                "SELECT relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
                " WHERE rolname = %s) AND relnamespace = current_schema()::regnamespace"
                " AND relkind IN ('r', 'p') ORDER BY relname",
                (role,),
            )
        )
    return RoleState(True, bool(row[0]), bool(row[1]), bool(row[2]), tables)


def role_statements(role: str, password: str | None, *, render: bool) -> list[str]:
    """The SQL that converges the role. Grants loop over the catalog, so the same statements
    are right before and after any migration; with render=True the password is masked."""
    r = quote_ident(role)
    lit = quote_literal(role)
    attrs = f"ALTER ROLE {r} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
    if password:
        attrs += " PASSWORD " + ("'***'" if render else quote_literal(password))
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {lit}) THEN "
        f"CREATE ROLE {r} LOGIN; END IF; END $$;",
        attrs + ";",
        # A role that owns a table escapes RLS (or can disable it): give ownership back.
        "DO $$ DECLARE t record; BEGIN FOR t IN SELECT relname FROM pg_class"
        f" WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = {lit})"
        " AND relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p') LOOP"
        " EXECUTE format('ALTER TABLE %I OWNER TO %I', t.relname, current_user);"
        " END LOOP; END $$;",
        f"GRANT USAGE ON SCHEMA public TO {r};",
        "DO $$ BEGIN IF to_regclass('tenants') IS NOT NULL THEN"
        f" EXECUTE format('GRANT SELECT ON tenants TO %I', {lit}); END IF; END $$;",
        f"DO $$ DECLARE t record; BEGIN FOR t IN {' '.join(TENANT_TABLES_SQL.split())} LOOP"
        " EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I',"
        f" t.relname, {lit}); END LOOP; END $$;",
        f"DO $$ BEGIN IF to_regclass('{LEDGER}') IS NOT NULL THEN"
        f" EXECUTE format('REVOKE ALL ON {LEDGER} FROM %I', {lit}); END IF; END $$;",
    ]


def ensure_app_role(pg: Postgres, role: str, password: str | None) -> list[str]:
    """Create or correct the role and its grants; returns the statements run (masked)."""
    conn = pg.conn()
    with translated(pg.dsn, f"ensuring role {role}"), conn.transaction():
        for stmt in role_statements(role, password, render=False):
            conn.execute(stmt)
    return role_statements(role, password, render=True)


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
        return [r[0] for r in pg.conn().execute(sql, {"r": role})]
