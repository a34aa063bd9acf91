"""Helpers for the schema tests: per-test app roles, AFASA-shaped init SQL, small queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from afasa_ops.infra.postgres import Postgres, Timeouts
from afasa_ops.schema.settings import SchemaSettings

# The AFASA init SQL as found in the field (examples/afasa/infra/postgres/init/001_init.sql),
# written out here without pgvector, which this server may lack: detections has no embedding.
AFASA_INIT_SQL = """
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE TABLE tenants (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE users (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), email text NOT NULL,
  role text NOT NULL DEFAULT 'viewer', created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE tenant_settings (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), key text NOT NULL, value jsonb);
CREATE TABLE cameras (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), name text NOT NULL, rtsp_url text,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE snapshots (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), camera_id uuid REFERENCES cameras(id),
  s3_key text, captured_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE detections (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), snapshot_id uuid REFERENCES snapshots(id),
  label text NOT NULL, confidence real, detected_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE assessments (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), detection_id uuid REFERENCES detections(id),
  severity text, summary text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE tasks (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), title text NOT NULL,
  status text NOT NULL DEFAULT 'open', due_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE rule_proposals (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), rule jsonb NOT NULL,
  status text NOT NULL DEFAULT 'proposed', created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE reports (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id),
  format text NOT NULL CHECK (format IN ('pdf', 'xlsx')),
  range_from timestamptz NOT NULL, range_to timestamptz NOT NULL, s3_key text,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'ready', 'failed')),
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE telegram_links (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), chat_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE secrets (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), purpose text NOT NULL,
  cipher_text bytea NOT NULL, key_version int NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE audit_log (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  tenant_id uuid NOT NULL REFERENCES tenants(id), actor_type text NOT NULL, actor_id text,
  action text NOT NULL, target_type text, target_id text, reason text, confidence real,
  before jsonb, after jsonb, occurred_at timestamptz NOT NULL DEFAULT now(),
  correlation_id text);
"""
AFASA_TENANT_TABLES = [
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
]
# As found: ENABLE without FORCE, USING without WITH CHECK.
AFASA_RLS_SQL = "\n".join(
    f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;\n"
    f"CREATE POLICY tenant_isolation ON {t} USING "
    f"(tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);"
    for t in AFASA_TENANT_TABLES
)


def execute(dsn: str, sql: str, params: Any = None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql, params)


def query(dsn: str, sql: str, params: Any = None) -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def settings_for(dsn: str, role: str, **kw: Any) -> SchemaSettings:
    kw.setdefault("timeouts", Timeouts(lock_s=5.0, statement_s=60.0))
    return SchemaSettings(admin_dsn=dsn, app_role=role, **kw)


def admin(cfg: SchemaSettings) -> Postgres:
    return Postgres(cfg.admin_dsn, cfg.timeouts)


@contextmanager
def app_role(dsn: str) -> Iterator[str]:
    """A unique role name for one test (roles are cluster-wide); dropped afterwards."""
    name = f"afasa_app_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if exists:
                conn.execute(f'REASSIGN OWNED BY "{name}" TO CURRENT_USER')  # type: ignore[arg-type]
                conn.execute(f'DROP OWNED BY "{name}"')  # type: ignore[arg-type]
                conn.execute(f'DROP ROLE "{name}"')  # type: ignore[arg-type]


def copy_migrations(target: Path) -> Path:
    """A private copy of the shipped migrations to edit in a test."""
    from afasa_ops.resources import migrations_dir

    target.mkdir(parents=True, exist_ok=True)
    for f in migrations_dir().iterdir():
        if f.name.endswith(".sql"):
            (target / f.name).write_text(f.read_text())
    return target


def mutated_init_sql(*edits: tuple[str, str]) -> str:
    """AFASA_INIT_SQL with (old, new) text edits, as another AFASA version's init SQL would
    differ. Each `old` must occur exactly once, so a fixture cannot silently stop mutating."""
    sql = AFASA_INIT_SQL
    for old, new in edits:
        assert sql.count(old) == 1, f"{old!r} occurs {sql.count(old)} times in AFASA_INIT_SQL"
        sql = sql.replace(old, new)
    return sql
