"""SQLAlchemy 2 models of the AFASA tables, as the migrations in schema/ create them.

The database is the source of truth: schema/*.sql makes the tables and these classes map them
(tests/integration/test_schema_models.py compares the two). Every table except `tenants` has
`tenant_id` and is guarded by the `tenant_isolation` RLS policy, so queries must run inside a
transaction where `app.tenant_id` is set (set_config(..., true)): see the workers'
`afasa_ops.platform.db.tenant_transaction`.

`detections.embedding vector(512)` exists only where pgvector is installed, so it is not mapped.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UUID_V4 = text("uuid_generate_v4()")
GEN_UUID = text("gen_random_uuid()")

REPORT_STATUSES = ("queued", "processing", "ready", "failed")
REPORT_FORMATS = ("pdf", "xlsx", "csv")
REPORT_TYPES = ("daily", "weekly", "monthly", "custom")
COMMANDS = ("enable", "disable")
COMMAND_STATUSES = ("requested", "completed", "failed")


class Base(DeclarativeBase):
    pass


def _pk(default: Any = UUID_V4) -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=default)


def _tenant_fk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), ForeignKey("tenants.id"), nullable=False)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _same_tenant(column: str, parent: str, child: str) -> ForeignKeyConstraint:
    """The reference stays in the row's tenant (migration 0007_tenant_bound_refs.sql)."""
    return ForeignKeyConstraint(
        ["tenant_id", column],
        [f"{parent}.tenant_id", f"{parent}.id"],
        name=f"{child}_{column}_same_tenant",
    )


def _tenant_unique(table: str) -> UniqueConstraint:
    return UniqueConstraint("tenant_id", "id", name=f"{table}_tenant_id_id_key")


def _in(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    email: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'viewer'"))
    created_at: Mapped[datetime] = _now()


class TenantSetting(Base):
    __tablename__ = "tenant_settings"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    key: Mapped[str] = mapped_column(Text, nullable=False)
    value: Mapped[Any | None] = mapped_column(JSONB)


class Camera(Base):
    __tablename__ = "cameras"
    __table_args__ = (_tenant_unique("cameras"),)
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    rtsp_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Snapshot(Base):
    __tablename__ = "snapshots"
    __table_args__ = (
        _tenant_unique("snapshots"),
        _same_tenant("camera_id", "cameras", "snapshots"),
    )
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    camera_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("cameras.id")
    )
    s3_key: Mapped[str | None] = mapped_column(Text)
    captured_at: Mapped[datetime] = _now()


class Detection(Base):
    __tablename__ = "detections"
    __table_args__ = (
        _tenant_unique("detections"),
        _same_tenant("snapshot_id", "snapshots", "detections"),
    )
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    snapshot_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("snapshots.id")
    )
    label: Mapped[str] = mapped_column(Text, nullable=False)
    confidence: Mapped[float | None] = mapped_column(REAL)
    detected_at: Mapped[datetime] = _now()


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (_same_tenant("detection_id", "detections", "assessments"),)
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    detection_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("detections.id")
    )
    severity: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    title: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'open'"))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class RuleProposal(Base):
    __tablename__ = "rule_proposals"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    rule: Mapped[Any] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'proposed'"))
    created_at: Mapped[datetime] = _now()


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (
        _in("format", REPORT_FORMATS, "reports_format_check"),
        _in("status", REPORT_STATUSES, "reports_status_check"),
        _in("report_type", REPORT_TYPES, "reports_report_type_check"),
    )
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    format: Mapped[str] = mapped_column(Text, nullable=False)
    range_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    range_to: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    s3_key: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'queued'"))
    created_at: Mapped[datetime] = _now()
    report_type: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'custom'"))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()
    requested_by: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(Text)


class TelegramLink(Base):
    __tablename__ = "telegram_links"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    chat_id: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()


class Secret(Base):
    __tablename__ = "secrets"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    cipher_text: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    created_at: Mapped[datetime] = _now()


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[uuid.UUID] = _pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    actor_type: Mapped[str] = mapped_column(Text, nullable=False)
    actor_id: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    target_type: Mapped[str | None] = mapped_column(Text)
    target_id: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(REAL)
    before: Mapped[Any | None] = mapped_column(JSONB)
    after: Mapped[Any | None] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = _now()
    correlation_id: Mapped[str | None] = mapped_column(Text)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "provider", "external_id", name="devices_tenant_provider_external_key"
        ),
        _tenant_unique("devices"),
    )
    id: Mapped[uuid.UUID] = _pk(GEN_UUID)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    provider: Mapped[str] = mapped_column(Text, nullable=False)
    external_id: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    desired_enabled: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("true")
    )
    reported_enabled: Mapped[bool | None] = mapped_column(Boolean)
    thingsboard_id: Mapped[str | None] = mapped_column(Text)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class DeviceCommand(Base):
    __tablename__ = "device_commands"
    __table_args__ = (
        _in("command", COMMANDS, "device_commands_command_check"),
        _in("status", COMMAND_STATUSES, "device_commands_status_check"),
        _same_tenant("device_id", "devices", "device_commands"),
    )
    id: Mapped[uuid.UUID] = _pk(GEN_UUID)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    device_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("devices.id"), nullable=False
    )
    command: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'requested'"))
    requested_by: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(Text)
    # 'applied_remote' or 'local_only: no ThingsBoard mapping', written by the commands worker.
    result: Mapped[str | None] = mapped_column(Text)


class EventOutbox(Base):
    __tablename__ = "event_outbox"
    id: Mapped[uuid.UUID] = _pk(GEN_UUID)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, unique=True)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    # The full event envelope (event_id, event_type, tenant_id, occurred_at, producer, data,
    # correlation_id), published as-is.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _now()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)


# Tables guarded by the tenant_isolation policy, in the order the migrations create them.
TENANT_TABLES: tuple[str, ...] = tuple(
    t.name for t in Base.metadata.sorted_tables if "tenant_id" in t.columns
)
