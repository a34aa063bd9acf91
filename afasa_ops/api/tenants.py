"""The caller's tenant must exist: a valid token for a tenant that is not in `tenants` is a
403 naming the reason (not a foreign-key violation from the first write). Known tenants are
remembered for a minute, so the check costs one query per tenant per minute."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING

from afasa_ops.api.auth import AuthError
from afasa_ops.platform.db import tenant_transaction

if TYPE_CHECKING:
    from sqlalchemy import Engine

KNOWN_TTL_S = 60.0


class KnownTenants:
    def __init__(self, ttl_s: float = KNOWN_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def require(self, engine: Engine, tenant_id: uuid.UUID) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(tenant_id)
        if seen is not None and now - seen < self.ttl_s:
            return
        if not tenant_exists(engine, tenant_id):
            raise AuthError(403, f"tenant {tenant_id} of this token is not a registered tenant")
        with self._lock:
            self._seen[tenant_id] = now


def tenant_exists(engine: Engine, tenant_id: uuid.UUID) -> bool:
    from sqlalchemy import text

    # In the tenant's own transaction: where tenants has row-level security, a tenant sees
    # exactly its own row.
    with tenant_transaction(engine, tenant_id) as conn:
        return (
            conn.execute(text("SELECT 1 FROM tenants WHERE id = :t"), {"t": tenant_id}).first()
            is not None
        )
