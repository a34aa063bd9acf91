"""What a database already holds: ledger, AFASA tables, extensions. Read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from afasa_ops.infra.postgres import Postgres

LEDGER = "afasa_ops_schema_migrations"
BASE_TABLES = (
    "tenants",
    "users",
    "tenant_settings",
    "cameras",
    "snapshots",
    "detections",
    "assessments",
    "tasks",
    "rule_proposals",
    "reports",
    "telegram_links",
    "secrets",
    "audit_log",
)
# Debian packages that provide an extension; {major} is the server's major version.
EXTENSION_PACKAGES = {
    "vector": "postgresql-{major}-pgvector",
    "uuid-ossp": "postgresql-{major} (contrib modules)",
    "pgcrypto": "postgresql-{major} (contrib modules)",
}


@dataclass(frozen=True)
class LedgerRow:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: int
    # The drift a baseline adopted (schema baseline), as recorded; None for other rows.
    adopted: list[dict[str, Any]] | None = None


@dataclass
class Inspection:
    database: str
    server_major: int
    tables: set[str] = field(default_factory=set)
    has_ledger: bool = False
    applied: dict[int, LedgerRow] = field(default_factory=dict)
    installed_ext: set[str] = field(default_factory=set)
    available_ext: set[str] = field(default_factory=set)
    uses_vector_type: bool = False

    @property
    def has_tenants(self) -> bool:
        return "tenants" in self.tables

    @property
    def state(self) -> str:
        """managed (ledger), fresh (no AFASA tables), unbaselined (AFASA init SQL, no
        ledger) or foreign (AFASA tables but no tenants, no ledger)."""
        if self.has_ledger:
            return "managed"
        present = self.tables & set(BASE_TABLES)
        if not present:
            return "fresh"
        return "unbaselined" if self.has_tenants else "foreign"

    def package_for(self, extension: str) -> str:
        pattern = EXTENSION_PACKAGES.get(extension, "a package that provides it")
        return pattern.format(major=self.server_major)


def inspect(pg: Postgres) -> Inspection:
    conn = pg.conn()
    from afasa_ops.infra.postgres import translated

    with translated(pg.dsn, "inspecting the database"):
        row: Any = conn.execute(
            "SELECT current_database(), current_setting('server_version_num')::int / 10000"
        ).fetchone()
        insp = Inspection(database=row[0], server_major=int(row[1]))
        insp.tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        insp.installed_ext = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        insp.available_ext = {
            r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")
        }
        insp.uses_vector_type = bool(
            conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
                " JOIN pg_class c ON c.oid = a.attrelid"
                " WHERE t.typname = 'vector' AND c.relnamespace = current_schema()::regnamespace"
                " AND NOT a.attisdropped)"
            ).fetchone()[0]  # type: ignore[index]
        )
        insp.has_ledger = LEDGER in insp.tables
        if insp.has_ledger:
            for r in conn.execute(
                # to_jsonb(l): a ledger from before the adopted column reads as NULL there.
                f"SELECT version, name, checksum, applied_at, applied_by, duration_ms, "
                f"to_jsonb(l) -> 'adopted' FROM {LEDGER} l ORDER BY version"
            ):
                insp.applied[int(r[0])] = LedgerRow(*r)
    return insp
