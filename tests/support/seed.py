"""Tenant data for report tests, inserted by the admin connection (fast, set-based)."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg


def seed_tenant_data(
    admin_dsn: str, tenant: uuid.UUID, n_detections: int, start: datetime, label: str = "aphid"
) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        cam = conn.execute(
            "INSERT INTO cameras (tenant_id, name) VALUES (%s, 'cam-1') RETURNING id", (tenant,)
        ).fetchone()
        assert cam is not None
        conn.execute(
            "INSERT INTO snapshots (tenant_id, camera_id, captured_at) "
            "SELECT %s, %s, %s + make_interval(hours => g) FROM generate_series(0, 5) g",
            (tenant, cam[0], start),
        )
        conn.execute(
            "INSERT INTO detections (tenant_id, label, confidence, detected_at) "
            "SELECT %s, %s, (g %% 100) / 100.0, %s + make_interval(secs => g / 10.0) "
            "FROM generate_series(1, %s) g",
            (tenant, label, start, n_detections),
        )
        conn.execute(
            "INSERT INTO tasks (tenant_id, title, created_at) VALUES (%s, 'spray row 4', %s)",
            (tenant, start),
        )
        conn.execute(
            "INSERT INTO assessments (tenant_id, severity, summary, created_at) "
            "VALUES (%s, 'high', 'aphids on row 4', %s)",
            (tenant, start),
        )
