"""Structured logs: one JSON object per line on stderr, redacted, carrying the job's
tenant_id, event_id and correlation_id when given in `extra`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from afasa_ops.redact import redactor

FIELDS = ("worker", "tenant_id", "event_id", "correlation_id", "subject", "deliveries", "url")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return redactor.redact(json.dumps(doc, default=str))


def setup(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("afasa_ops")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
