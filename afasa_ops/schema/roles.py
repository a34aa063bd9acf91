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


# What the services need on tenant tables; append-only tables (the audit trail) get no UPDATE
# or DELETE, so a compromised service cannot rewrite history.
TENANT_GRANTS = "SELECT, INSERT, UPDATE, DELETE"
APPEND_ONLY_GRANTS = "SELECT, INSERT"
APPEND_ONLY = ("audit_log",)


def _append_only() -> str:
    return ", ".join(quote_literal(t) for t in APPEND_ONLY)


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
        # tenants: read only, and row-level security (0008) shows a tenant its own row.
        "DO $$ BEGIN IF to_regclass('tenants') IS NOT NULL THEN"
        f" EXECUTE format('REVOKE ALL ON tenants FROM %I', {lit});"
        f" EXECUTE format('GRANT SELECT ON tenants TO %I', {lit}); END IF; END $$;",
        # Every tenant id, and nothing else, for the workers that go over all tenants.
        "DO $$ BEGIN IF to_regprocedure('afasa_tenant_ids()') IS NOT NULL THEN"
        f" EXECUTE format('GRANT EXECUTE ON FUNCTION afasa_tenant_ids() TO %I', {lit});"
        " END IF; END $$;",
        # Exactly the privileges the services use: audit_log is append-only.
        f"DO $$ DECLARE t record; BEGIN FOR t IN {' '.join(TENANT_TABLES_SQL.split())} LOOP"
        f" EXECUTE format('REVOKE ALL ON %I FROM %I', t.relname, {lit});"
        f" EXECUTE format('GRANT %s ON %I TO %I', CASE WHEN t.relname IN ({_append_only()})"
        f" THEN '{APPEND_ONLY_GRANTS}' ELSE '{TENANT_GRANTS}' END, t.relname, {lit});"
        " END LOOP; END $$;",
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
               AND (t.relname = ANY(%(append_only)s)
                    OR has_table_privilege(%(r)s, t.relname, 'UPDATE')))
    UNION ALL
    SELECT 'tenants' WHERE to_regclass('tenants') IS NOT NULL
      AND NOT has_table_privilege(%(r)s, 'tenants', 'SELECT')
    UNION ALL
    SELECT 'afasa_tenant_ids()' WHERE to_regprocedure('afasa_tenant_ids()') IS NOT NULL
      AND NOT has_function_privilege(%(r)s, 'afasa_tenant_ids()', 'EXECUTE')
    """
    with translated(pg.dsn, f"reading grants of {role}"):
        rows = pg.conn().execute(sql, {"r": role, "append_only": list(APPEND_ONLY)})
        return [r[0] for r in rows]


def excess_grants(pg: Postgres, role: str) -> list[str]:
    """Privileges the role holds beyond what the services need, as "table: PRIVILEGE"."""
    sql = """
    SELECT t || ': ' || p FROM unnest(%(append_only)s::text[]) AS t,
      unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) AS p
    WHERE to_regclass(t) IS NOT NULL AND has_table_privilege(%(r)s, t, p)
    UNION ALL
    SELECT 'tenants: ' || p FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p
    WHERE to_regclass('tenants') IS NOT NULL AND has_table_privilege(%(r)s, 'tenants', p)
    """
    with translated(pg.dsn, f"reading grants of {role}"):
        rows = pg.conn().execute(sql, {"r": role, "append_only": list(APPEND_ONLY)})
        return [r[0] for r in rows]
