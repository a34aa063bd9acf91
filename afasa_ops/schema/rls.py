"""RLS audit (one catalog query) and a live isolation probe as the application role.

The audit reads, for every table with a tenant_id column, whether RLS is enabled and forced
and which policies it has. The probe proves isolation by behaviour, inside a transaction that
is rolled back: a test run as the owner or a superuser would pass vacuously, so the probe runs
as the role the services use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from afasa_ops.findings import Finding
from afasa_ops.infra.postgres import Postgres, Timeouts, connect, dsn_target, translated
from afasa_ops.schema.roles import RoleState, quote_ident, role_state

SETTING = "app.tenant_id"
# The catalog facts of every tenant table and its policies, in one round trip. Whether a
# policy pins tenant_id to the setting is read from its stored expression tree (a Var on the
# tenant_id column and the 'app.tenant_id' constant) instead of deparsing it with pg_get_expr,
# which costs ten times the whole query on hundreds of tables.
AUDIT_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner),
       p.polname, p.polcmd::text, p.polpermissive,
       strpos(p.polqual::text, '{VAR :varno 1 :varattno ' || a.attnum || ' ') > 0
         AND strpos(p.polqual::text, %(setting)s) > 0,
       strpos(p.polwithcheck::text, '{VAR :varno 1 :varattno ' || a.attnum || ' ') > 0
         AND strpos(p.polwithcheck::text, %(setting)s) > 0
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY c.relname, p.polname
"""


def setting_constant(name: str = "app.tenant_id") -> str:
    """How a text constant is stored in a node tree: the varlena bytes, 4-byte header first."""
    data = name.encode()
    header = ((len(data) + 4) << 2).to_bytes(4, "little")
    return " ".join(str(b) for b in header + data) + " ]"


@dataclass
class TableRls:
    name: str
    enabled: bool
    forced: bool
    owner: str
    # (name, command, permissive, USING pins tenant_id, WITH CHECK pins tenant_id)
    policies: list[tuple[str, str, bool, bool, bool]] = field(default_factory=list)


def read_tables(pg: Postgres) -> dict[str, TableRls]:
    tables: dict[str, TableRls] = {}
    with translated(pg.dsn, "reading row-level security"):
        for row in pg.conn().execute(AUDIT_SQL, {"setting": setting_constant(SETTING)}):
            t = tables.setdefault(row[0], TableRls(row[0], row[1], row[2], row[3]))
            if row[4] is not None:
                t.policies.append((row[4], row[5], row[6], bool(row[7]), bool(row[8])))
    return tables


def audit_tables(tables: dict[str, TableRls]) -> list[Finding]:
    out: list[Finding] = []
    for t in tables.values():
        if not t.enabled:
            out.append(
                Finding.error(
                    "db.rls_disabled",
                    f"row-level security is not enabled on {t.name}",
                    table=t.name,
                )
            )
        elif not t.forced:
            out.append(
                Finding.error(
                    "db.rls_not_forced",
                    f"row-level security is not forced on {t.name}, so its owner ({t.owner}) bypasses it",
                    table=t.name,
                )
            )
        # An ALL (*) policy whose USING pins tenant_id to the setting.
        tenant = [p for p in t.policies if p[1] == "*" and p[3]]
        if not tenant:
            out.append(
                Finding.error(
                    "db.policy_missing",
                    f"no FOR ALL policy on {t.name} with USING (tenant_id = ...{SETTING}...)",
                    table=t.name,
                )
            )
        elif not any(p[4] for p in tenant):
            out.append(
                Finding.error(
                    "db.policy_without_check",
                    f"policy {tenant[0][0]} on {t.name} has no WITH CHECK on tenant_id",
                    table=t.name,
                )
            )
    return out


def role_findings(role: str, state: RoleState, via: str) -> list[Finding]:
    if not state.exists:
        return [
            Finding.error(
                "db.app_role_missing",
                f"role {role} ({via}) does not exist; run `afasa-ops schema migrate`",
            )
        ]
    why = []
    if state.superuser:
        why.append("is a superuser")
    if state.bypassrls:
        why.append("has BYPASSRLS")
    if state.owned_tables:
        why.append(f"owns {', '.join(state.owned_tables[:5])}")
    if not why:
        return []
    return [
        Finding.error(
            "db.rls_bypassed_by_role",
            f"{via} connects as {role}, which {' and '.join(why)}: row-level security does "
            "not hold for the services",
            role=role,
        )
    ]


def services_role(pg: Postgres, app_dsn: str | None, app_role: str) -> tuple[str, str]:
    """(role name, how it was found): the role app_dsn logs in as, else the configured one."""
    if not app_dsn:
        return app_role, f"[database] app_role {app_role}"
    conn = connect(app_dsn, timeouts=pg.timeouts)
    try:
        with translated(app_dsn, "reading the services' role"):
            row: Any = conn.execute("SELECT current_user").fetchone()
        return str(row[0]), f"[database] app_dsn ({dsn_target(app_dsn)})"
    finally:
        conn.close()


def audit(pg: Postgres, app_dsn: str | None, app_role: str) -> list[Finding]:
    tables = read_tables(pg)
    findings = audit_tables(tables)
    role, via = services_role(pg, app_dsn, app_role)
    state = role_state(pg, role, owned=False)
    # Ownership of tenant tables comes from the catalog rows already read.
    owned = tuple(t.name for t in tables.values() if t.owner == role)
    findings += role_findings(role, replace(state, owned_tables=owned), via)
    return findings


class ProbeFailed(Exception):
    pass


def probe(pg: Postgres, role: str, table: str = "devices") -> list[Finding]:
    """Live isolation probe as `role`; everything it writes is rolled back."""
    import psycopg

    conn = pg.conn()
    a, b = uuid.uuid4(), uuid.uuid4()
    ext = f"afasa-ops-probe-{uuid.uuid4().hex[:8]}"
    problems: list[str] = []
    try:
        with conn.transaction(force_rollback=True):
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:  # type: ignore[index]
                raise ProbeFailed(f"table {table} does not exist; run `afasa-ops schema migrate`")
            conn.execute(
                "INSERT INTO tenants (id, name) VALUES (%s, 'probe A'), (%s, 'probe B')", (a, b)
            )
            conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
            tenant(conn, a)
            conn.execute(
                f"INSERT INTO {quote_ident(table)} (tenant_id, provider, external_id)"
                " VALUES (%s, 'probe', %s)",
                (a, ext),
            )
            tenant(conn, b)
            seen = conn.execute(
                f"SELECT count(*) FROM {quote_ident(table)} WHERE external_id = %s",
                (ext,),
            ).fetchone()[0]  # type: ignore[index]
            if seen:
                problems.append(f"tenant B sees tenant A's {table} row")
            try:
                with conn.transaction():
                    conn.execute(
                        f"INSERT INTO {quote_ident(table)} (tenant_id, provider, external_id)"
                        " VALUES (%s, 'probe', %s)",
                        (a, ext + "-x"),
                    )
                problems.append(f"a {table} row for tenant A was written while set to tenant B")
            except psycopg.errors.InsufficientPrivilege:
                pass  # refused by WITH CHECK, as wanted
            problems += _privacy_problems(conn, role)
        # The next transaction on the same connection must not inherit the tenant.
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
            left = conn.execute("SELECT current_setting(%s, true)", (SETTING,)).fetchone()[0]  # type: ignore[index]
            if left not in (None, ""):
                problems.append(f"{SETTING} leaked into the next transaction ({left})")
    except ProbeFailed as exc:
        problems.append(str(exc))
    except psycopg.Error as exc:
        problems.append(f"the probe as {role} failed: {str(exc).splitlines()[0]}")
    return [
        Finding.error("db.isolation_probe_failed", f"isolation probe on {table}: {p}", role=role)
        for p in problems
    ]


def _privacy_problems(conn: Any, role: str) -> list[str]:
    """As the role with one tenant set: it sees its own tenants row only, and cannot rewrite
    the audit trail (migration 0008_tenant_privacy.sql, the grants of schema/roles.py)."""
    import psycopg

    problems: list[str] = []
    seen = conn.execute("SELECT count(*) FROM tenants").fetchone()[0]
    if seen != 1:
        problems.append(f"a tenant sees {seen} rows of tenants, not only its own")
    for verb in (
        "UPDATE audit_log SET reason = reason WHERE false",
        "DELETE FROM audit_log WHERE false",
    ):
        try:
            with conn.transaction():
                conn.execute(verb)
            problems.append(f"{role} may {verb.split()[0]} audit_log (it must be append-only)")
        except psycopg.errors.InsufficientPrivilege:
            pass
    return problems


def tenant(conn: Any, tenant_id: uuid.UUID) -> None:
    """Transaction-local tenant, as the services must set it (never plain SET)."""
    conn.execute("SELECT set_config(%s, %s, true)", (SETTING, str(tenant_id)))


def leak_probe(app_dsn: str, timeouts: Timeouts | None = None) -> list[Finding]:
    """On one connection as the services log in: a tenant set in one transaction must be gone
    in the next (a role or database default, or a plain SET, would make it stick)."""
    conn = connect(app_dsn, timeouts=timeouts, autocommit=False)
    try:
        with translated(app_dsn, "probing tenant leaks"):
            before = conn.execute("SELECT current_setting(%s, true)", (SETTING,)).fetchone()
            conn.rollback()
            with conn.transaction():
                tenant(conn, uuid.uuid4())
            after = conn.execute("SELECT current_setting(%s, true)", (SETTING,)).fetchone()
            conn.rollback()
    finally:
        conn.close()
    leaked = [v for v in (before and before[0], after and after[0]) if v not in (None, "")]
    if not leaked:
        return []
    return [
        Finding.error(
            "db.isolation_probe_failed",
            f"{SETTING} is set outside a tenant transaction on {dsn_target(app_dsn)} "
            f"({leaked[0]}): a pooled connection would carry one tenant into another's request",
        )
    ]
