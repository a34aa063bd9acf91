"""Whose UbiBot account key a tenant's sync uses.

A key in the configuration (`[ubibot] account_key`) belongs to `[ubibot] tenant_id` and to
no other tenant. Every other tenant's key is its own `secrets` row (purpose `ubibot_api_key`,
AES-256-GCM). A tenant with neither is refused, naming the secret it lacks: a sync must never
fetch one tenant's channels into another.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from afasa_ops.errors import ConfigError, DriverError, UsageError
from afasa_ops.platform.db import as_uuid, tenant_transaction
from afasa_ops.platform.devices import UBIBOT_SECRET_PURPOSE
from afasa_ops.platform.secrets import MASTER_KEY_ENV, load_secret, master_key_from_env

if TYPE_CHECKING:
    from sqlalchemy import Engine


class MissingAccountKey(UsageError):
    """The tenant has no UbiBot key of its own (a 409 over the API)."""

    def __init__(self, tenant_id: uuid.UUID) -> None:
        super().__init__(
            f"tenant {tenant_id} has no UbiBot account key: no secret with purpose "
            f"{UBIBOT_SECRET_PURPOSE}",
            hint=f"store the tenant's key as a {UBIBOT_SECRET_PURPOSE} secret",
        )
        self.tenant_id = tenant_id


class AccountKeyUnreadable(DriverError):
    """The tenant has a key, but this process cannot decrypt it (server configuration)."""


@dataclass(frozen=True)
class ConfiguredKey:
    """The single-tenant key from the configuration and the one tenant it belongs to."""

    tenant_id: uuid.UUID
    key: str


def configured_key(tenant_id: str | None, key: str | None) -> ConfiguredKey | None:
    """[ubibot] account_key + tenant_id, checked: a key without its tenant is nobody's."""
    if not key:
        return None
    if not tenant_id:
        raise ConfigError(
            "[ubibot] account_key is set but tenant_id is not: whose key is it?",
            hint="set [ubibot] tenant_id to the tenant that owns the key",
        )
    try:
        return ConfiguredKey(as_uuid(tenant_id.strip()), key)
    except ValueError:
        raise ConfigError(f"[ubibot] tenant_id {tenant_id!r} is not a UUID") from None


def master_key_or_none() -> bytes | None:
    """The master key when AFASA_MASTER_KEY_BASE64 is set (a malformed one is an error)."""
    return master_key_from_env() if os.environ.get(MASTER_KEY_ENV) else None


def has_secret(db: Engine, tenant_id: uuid.UUID, purpose: str) -> bool:
    from sqlalchemy import text

    with tenant_transaction(db, tenant_id) as conn:
        row = conn.execute(
            text("SELECT 1 FROM secrets WHERE tenant_id = :t AND purpose = :p LIMIT 1"),
            {"t": str(tenant_id), "p": purpose},
        ).first()
    return row is not None


def account_key_for(
    db: Engine,
    tenant_id: uuid.UUID | str,
    configured: ConfiguredKey | None,
    master_key: bytes | None,
) -> str:
    """The key to fetch this tenant's channels with, or MissingAccountKey."""
    tid = as_uuid(tenant_id)
    if configured is not None and configured.tenant_id == tid:
        return configured.key
    if master_key is None:
        if not has_secret(db, tid, UBIBOT_SECRET_PURPOSE):
            raise MissingAccountKey(tid)
        raise AccountKeyUnreadable(
            f"tenant {tid} has a {UBIBOT_SECRET_PURPOSE} secret but {MASTER_KEY_ENV} is not "
            "set, so it cannot be decrypted",
            hint=f"set {MASTER_KEY_ENV} for the service",
        )
    key = load_secret(db, tid, UBIBOT_SECRET_PURPOSE, master_key)
    if not key:
        raise MissingAccountKey(tid)
    return key
