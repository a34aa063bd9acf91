"""Plan, render and apply migrations: ledger, checksums, advisory lock, baseline, verify.

Each migration and its ledger row commit in one transaction; a session-level advisory lock is
held for the whole migrate, so two migrates never apply the same file twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from afasa_ops.errors import AfasaOpsError, BlockedError, DriverError
from afasa_ops.findings import Finding
from afasa_ops.infra.postgres import LOCK_STATES, Postgres, translated
from afasa_ops.schema import migrations as mig_files
from afasa_ops.schema.inspect import LEDGER, Inspection, inspect
from afasa_ops.schema.migrations import Migration
from afasa_ops.schema.roles import quote_literal
from afasa_ops.schema.settings import SchemaSettings

# pg_advisory_lock key: 'AFASAOPS' read as a number, so other tools' keys do not collide.
LOCK_KEY = 0x4146415341_4F5053
LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
  version int PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by text NOT NULL DEFAULT current_user,
  duration_ms int NOT NULL DEFAULT 0
)"""


@dataclass(frozen=True)
class Drift:
    migration: Migration
    recorded: str

    def message(self) -> str:
        return (
            f"{self.migration.path.name} changed after it was applied: ledger sha256 "
            f"{self.recorded}, file sha256 {self.migration.checksum}"
        )


@dataclass
class MigrationPlan:
    inspection: Inspection
    migrations: list[Migration]
    pending: list[Migration] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    unknown_versions: list[int] = field(default_factory=list)
    missing_extensions: list[str] = field(default_factory=list)
    create_extensions: list[str] = field(default_factory=list)
    vector: bool = False

    @property
    def blocked_reason(self) -> str | None:
        insp = self.inspection
        if self.drift:
            return self.drift[0].message() + " (restore the file or write a new migration)"
        if insp.state == "unbaselined":
            return (
                f"database {insp.database} was made by the AFASA init SQL (tables present, no "
                f"{LEDGER}); run `afasa-ops schema baseline` first"
            )
        if insp.state == "foreign":
            present = ", ".join(sorted(insp.tables & {"users", "reports", "devices"}) or ["..."])
            return (
                f"database {insp.database} has AFASA tables ({present}) but no tenants table; "
                "point [database] admin_dsn at the AFASA database or restore tenants"
            )
        if self.missing_extensions:
            ext = self.missing_extensions[0]
            return (
                f'PostgreSQL {insp.server_major} on {insp.database} lacks the extension "{ext}" '
                f"(not in pg_available_extensions); install the Debian package "
                f"{insp.package_for(ext)} on the database server"
                + (" or set [database] vector = 'off'" if ext == "vector" else "")
                + "; nothing was changed"
            )
        return None

    def findings(self) -> list[Finding]:
        out = [Finding.error("db.migration_drift", d.message()) for d in self.drift]
        insp = self.inspection
        if insp.state == "unbaselined":
            out.append(Finding.warning("db.not_baselined", self.blocked_reason or ""))
        if insp.state == "foreign":
            out.append(Finding.error("db.tenants_missing", self.blocked_reason or ""))
        for ext in self.missing_extensions:
            out.append(
                Finding.error(
                    "db.extension_missing",
                    f'extension "{ext}" is not available; install {insp.package_for(ext)}',
                    extension=ext,
                    package=insp.package_for(ext),
                )
            )
        for v in self.unknown_versions:
            out.append(
                Finding.warning(
                    "db.migration_unknown", f"the ledger has version {v:04d}, no file has it"
                )
            )
        for m in self.pending:
            out.append(Finding.info("db.migration_pending", f"{m.path.name} is not applied"))
        return out


def vector_enabled(cfg: SchemaSettings, insp: Inspection) -> bool:
    """pgvector is used where the database already uses it, where it is asked for, or (auto)
    where the server can provide it."""
    if cfg.vector == "off":
        return "vector" in insp.installed_ext or insp.uses_vector_type
    if cfg.vector == "require":
        return True
    return "vector" in insp.installed_ext or insp.uses_vector_type or "vector" in insp.available_ext


def make_plan(pg: Postgres, cfg: SchemaSettings) -> MigrationPlan:
    migrations = mig_files.load(cfg.migrations_dir)
    insp = inspect(pg)
    plan = MigrationPlan(insp, migrations, vector=vector_enabled(cfg, insp))
    by_version = {m.version: m for m in migrations}
    for version, row in insp.applied.items():
        m = by_version.get(version)
        if m is None:
            plan.unknown_versions.append(version)
        elif m.checksum != row.checksum:
            plan.drift.append(Drift(m, row.checksum))
    plan.pending = [m for m in migrations if m.version not in insp.applied]
    wanted: list[str] = []
    for m in plan.pending:
        wanted += list(m.requires)
        wanted += [e for e in m.optional if e == "vector" and plan.vector]
    for ext in dict.fromkeys(wanted):
        if ext in insp.installed_ext:
            continue
        if ext in insp.available_ext:
            plan.create_extensions.append(ext)
        else:
            plan.missing_extensions.append(ext)
    return plan


def extension_sql(migration: Migration, plan: MigrationPlan, done: set[str]) -> list[str]:
    out = []
    for ext in [*migration.requires, *migration.optional]:
        if ext in plan.create_extensions and ext not in done:
            out.append(f'CREATE EXTENSION IF NOT EXISTS "{ext}";')
            done.add(ext)
    return out


def ledger_insert(m: Migration) -> str:
    # duration: from the transaction start (now()) to this statement (clock_timestamp()).
    return (
        f"INSERT INTO {LEDGER} (version, name, checksum, applied_at, applied_by, duration_ms)\n"
        f"VALUES ({m.version}, {quote_literal(m.name)}, {quote_literal(m.checksum)}, now(), "
        "current_user, (extract(epoch FROM clock_timestamp() - now()) * 1000)::int)\n"
        "ON CONFLICT (version) DO NOTHING;"
    )


def render(plan: MigrationPlan, role_sql: list[str] | None = None) -> str:
    """Exactly the SQL `migrate` runs for this plan, as a script (passwords masked)."""
    parts = [f"-- database {plan.inspection.database}: {len(plan.pending)} migration(s)"]
    if plan.pending:
        parts.append(LEDGER_DDL + ";")
    done: set[str] = set()
    for m in plan.pending:
        parts.append(f"-- {m.path.name} (sha256 {m.checksum})\nBEGIN;")
        parts += extension_sql(m, plan, done)
        parts.append(m.body.strip())
        parts.append(ledger_insert(m))
        parts.append("COMMIT;")
    if role_sql:
        parts.append("-- the application role, re-applied after every migrate\nBEGIN;")
        parts += role_sql
        parts.append("COMMIT;")
    return "\n".join(parts) + "\n"


@contextmanager
def advisory_lock(pg: Postgres, wait_s: float) -> Iterator[None]:
    """Session-level lock for the whole migrate. Waits up to wait_s, then blocks clearly."""
    conn = pg.conn()
    deadline = time.monotonic() + wait_s
    with translated(pg.dsn, "taking the schema lock"):
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() >= deadline:
                holder = conn.execute(
                    "SELECT l.pid, a.application_name, a.backend_start FROM pg_locks l"
                    " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted"
                    " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                    (LOCK_KEY,),
                ).fetchone()
                who = f"pid {holder[0]} ({holder[1]}, since {holder[2]})" if holder else "a session"
                raise BlockedError(
                    f"another migrate holds the schema lock on {pg.target}: {who}; waited "
                    f"{wait_s:g}s",
                    hint="wait for it to finish and run again (nothing was applied here)",
                )
            time.sleep(0.1)
    try:
        yield
    finally:
        if not conn.closed:
            with translated(pg.dsn, "releasing the schema lock"):
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


# Other sessions holding locks on this database's tables: the ones a migration waits for.
_HOLDERS_SQL = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), a.usename,
       coalesce(a.xact_start, a.backend_start), a.state,
       string_agg(DISTINCT l.mode || ' on ' || c.relname, ', ')
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
GROUP BY 1, 2, 3, 4, 5
ORDER BY 4
LIMIT 3
"""


def describe_lock_holders(conn: object) -> str:
    """'pid 123 (application psql, user app, since 2026-..., idle in transaction: ...)'."""
    try:
        rows = conn.execute(_HOLDERS_SQL).fetchall()  # type: ignore[attr-defined]
    except Exception:
        return "another session (could not read pg_locks)"
    if not rows:
        return "another session (gone by now)"
    return "; ".join(
        f"pid {pid} (application {app}, user {user}, since {since:%Y-%m-%d %H:%M:%S%z}, "
        f"{state}: {locks})"
        for pid, app, user, since, state, locks in rows
    )


@dataclass
class MigrateResult:
    applied: list[str] = field(default_factory=list)
    # file name -> sha256, for the report (the SQL itself stays in the journal)
    checksums: dict[str, str] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)
    role_sql: list[str] = field(default_factory=list)


class MigrationFailed(DriverError):
    pass


def apply_one(pg: Postgres, m: Migration, plan: MigrationPlan, done: set[str]) -> None:
    import psycopg

    conn = pg.conn()
    try:
        with conn.transaction():
            for stmt in extension_sql(m, plan, done):
                conn.execute(stmt)
            conn.execute(m.body)
            cur = conn.execute(ledger_insert(m))
            if cur.rowcount != 1:
                raise MigrationFailed(
                    f"{m.path.name}: the ledger already has version {m.version:04d}; "
                    "another migrate applied it (rolled back here)"
                )
    except psycopg.Error as exc:
        if getattr(exc, "sqlstate", None) in LOCK_STATES:
            # Not the file's fault: another session holds what this migration must lock.
            raise BlockedError(
                f"{m.path.name}: a lock was not granted within lock_timeout "
                f"({pg.timeouts.lock_s:g}s); held by {describe_lock_holders(conn)}; "
                "rolled back, nothing applied",
                hint="wait for that session to finish (or end it) and run again",
            ) from exc
        diag = exc.diag
        where = ""
        if diag.statement_position:
            where = f" line {mig_files.line_of(m.body, int(diag.statement_position))}"
        elif diag.context:
            where = f" ({diag.context.splitlines()[0]})"
        text = diag.message_primary or str(exc).splitlines()[0]
        raise MigrationFailed(
            f"{m.path.name}{where}: {text}; this migration was rolled back, ledger unchanged",
            # A migration that refuses the data it finds says what to do in its HINT.
            hint=diag.message_hint or f"fix {m.path} and run `afasa-ops schema migrate` again",
        ) from exc


def migrate(pg: Postgres, cfg: SchemaSettings, *, ensure_role: bool = True) -> MigrateResult:
    from afasa_ops.schema.roles import ensure_app_role

    result = MigrateResult()
    with advisory_lock(pg, cfg.timeouts.lock_s):
        # Plan under the lock: a migrate that just finished changes what is pending.
        plan = make_plan(pg, cfg)
        reason = plan.blocked_reason
        if reason:
            raise BlockedError(reason)
        with translated(pg.dsn, "creating the ledger"):
            pg.conn().execute(LEDGER_DDL)
        done: set[str] = set()
        for m in plan.pending:
            apply_one(pg, m, plan, done)
            result.applied.append(m.path.name)
            result.checksums[m.path.name] = m.checksum
        result.extensions = sorted(done)
        if ensure_role:
            result.role_sql = ensure_app_role(pg, cfg.app_role, cfg.app_password)
    return result


def verify(pg: Postgres, cfg: SchemaSettings) -> list[Finding]:
    """Every migration applied, unchanged, and its verify query true."""
    plan = make_plan(pg, cfg)
    findings = [f for f in plan.findings() if f.code != "db.extension_missing" or plan.pending]
    conn = pg.conn()
    for m in plan.migrations:
        if m.version not in plan.inspection.applied:
            continue
        try:
            doing = f"running the verify query of {m.path.name}"
            with translated(pg.dsn, doing), conn.transaction(force_rollback=True):
                row = conn.execute(m.verify).fetchone()
            ok = bool(row and row[0] is True)
            detail = "returned " + (repr(row[0]) if row else "no row")
        except AfasaOpsError as exc:
            ok, detail = False, exc.message
        if not ok:
            findings.append(
                Finding.error(
                    "db.migration_unverified",
                    f"{m.path.name}: the verify query did not return true ({detail})",
                )
            )
    return findings
