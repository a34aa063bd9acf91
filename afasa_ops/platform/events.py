"""The AFASA event envelope and subjects (AFASA-CONTRACT.md, "Event bus")."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STREAM_SUBJECTS = ["afasa.>"]

REPORT_REQUESTED = "afasa.report.requested"
REPORT_READY = "afasa.report.ready"
DEVICE_SYNCED = "afasa.device.synced"
DEVICE_COMMAND_REQUESTED = "afasa.device.command.requested"
DEVICE_COMMAND_COMPLETED = "afasa.device.command.completed"
DLQ_PREFIX = "afasa.dlq."

# Deterministic ids for events that announce a one-time transition (a report becoming ready,
# a command completing): a redelivered job writes the same event_id, which the outbox's
# UNIQUE(event_id) and JetStream's Nats-Msg-Id both collapse to one.
_NAMESPACE = uuid.UUID("5b0d2a4e-6f3c-4e59-9d0f-6a1b8f1c2e77")


def dlq_subject(subject: str) -> str:
    return DLQ_PREFIX + subject.removeprefix("afasa.")


def derived_event_id(kind: str, key: uuid.UUID | str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{key}")


class EnvelopeError(ValueError):
    """A message body that is not an AFASA envelope."""


@dataclass(frozen=True)
class Envelope:
    event_type: str
    tenant_id: str
    data: dict[str, Any]
    producer: str
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    correlation_id: str | None = None

    @property
    def subject(self) -> str:
        return self.event_type

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "tenant_id": self.tenant_id,
            "occurred_at": self.occurred_at,
            "producer": self.producer,
            "data": self.data,
            "correlation_id": self.correlation_id,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.as_dict(), separators=(",", ":"), default=str).encode()

    @classmethod
    def from_dict(cls, raw: Any) -> Envelope:
        if not isinstance(raw, dict):
            raise EnvelopeError("event body is not a JSON object")
        missing = [k for k in ("event_id", "event_type", "tenant_id", "data") if not raw.get(k)]
        if missing:
            raise EnvelopeError(f"event lacks {', '.join(missing)}")
        if not isinstance(raw["data"], dict):
            raise EnvelopeError("event data is not an object")
        try:
            uuid.UUID(str(raw["tenant_id"]))
        except ValueError:
            raise EnvelopeError(f"event tenant_id {raw['tenant_id']!r} is not a UUID") from None
        return cls(
            event_type=str(raw["event_type"]),
            tenant_id=str(raw["tenant_id"]),
            data=raw["data"],
            producer=str(raw.get("producer") or "unknown"),
            event_id=str(raw["event_id"]),
            occurred_at=str(raw.get("occurred_at") or ""),
            correlation_id=raw.get("correlation_id"),
        )

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"event body is not JSON: {exc}") from None
        return cls.from_dict(raw)


def new_event(
    subject: str,
    tenant_id: uuid.UUID | str,
    data: dict[str, Any],
    *,
    producer: str,
    correlation_id: str | None = None,
    event_id: uuid.UUID | str | None = None,
) -> Envelope:
    return Envelope(
        event_type=subject,
        tenant_id=str(tenant_id),
        data=data,
        producer=producer,
        event_id=str(event_id or uuid.uuid4()),
        correlation_id=correlation_id,
    )
