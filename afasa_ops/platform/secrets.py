"""Tenant secrets: AES-256-GCM, cipher_text = nonce(12) || ciphertext+tag, no associated data,
key = base64-decoded AFASA_MASTER_KEY_BASE64 (32 bytes)."""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from afasa_ops.errors import ConfigError, DriverError
from afasa_ops.platform.db import tenant_transaction
from afasa_ops.redact import redactor

if TYPE_CHECKING:
    from sqlalchemy import Engine

MASTER_KEY_ENV = "AFASA_MASTER_KEY_BASE64"
NONCE_LEN = 12
KEY_VERSION = 1


def master_key_from_env(environ: Mapping[str, str] | None = None) -> bytes:
    env = os.environ if environ is None else environ
    raw = env.get(MASTER_KEY_ENV)
    if not raw:
        raise ConfigError(
            f"{MASTER_KEY_ENV} is not set",
            hint="set it to base64 of 32 random bytes (openssl rand -base64 32)",
        )
    redactor.add(raw)
    return parse_master_key(raw)


def parse_master_key(raw: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{MASTER_KEY_ENV} is not valid base64") from None
    if len(key) != 32:
        raise ConfigError(
            f"{MASTER_KEY_ENV} decodes to {len(key)} bytes; AES-256 needs 32",
            hint="generate one with: openssl rand -base64 32",
        )
    return key


def encrypt(master_key: bytes, plaintext: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_LEN)
    return nonce + AESGCM(master_key).encrypt(nonce, plaintext.encode(), None)


def decrypt(master_key: bytes, blob: bytes) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(blob) < NONCE_LEN + 16:
        raise DriverError("secret cipher_text is too short to be nonce || ciphertext+tag")
    try:
        plain = AESGCM(master_key).decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], None)
    except InvalidTag:
        raise DriverError(
            "secret does not decrypt with this master key",
            hint=f"check {MASTER_KEY_ENV} is the key the secret was written with",
        ) from None
    value = plain.decode()
    redactor.add(value)
    return value


def store_secret(
    db: Engine, tenant_id: uuid.UUID | str, purpose: str, value: str, master_key: bytes
) -> None:
    """Replace the tenant's secret for `purpose` (one live secret per purpose)."""
    from sqlalchemy import text

    redactor.add(value)
    blob = encrypt(master_key, value)
    with tenant_transaction(db, tenant_id) as conn:
        conn.execute(
            text("DELETE FROM secrets WHERE tenant_id = :t AND purpose = :p"),
            {"t": str(tenant_id), "p": purpose},
        )
        conn.execute(
            text(
                "INSERT INTO secrets (tenant_id, purpose, cipher_text, key_version) "
                "VALUES (:t, :p, :c, :v)"
            ),
            {"t": str(tenant_id), "p": purpose, "c": blob, "v": KEY_VERSION},
        )


def load_secret(
    db: Engine, tenant_id: uuid.UUID | str, purpose: str, master_key: bytes
) -> str | None:
    from sqlalchemy import text

    with tenant_transaction(db, tenant_id) as conn:
        row = conn.execute(
            text(
                "SELECT cipher_text FROM secrets WHERE tenant_id = :t AND purpose = :p "
                "ORDER BY created_at DESC LIMIT 1"
            ),
            {"t": str(tenant_id), "p": purpose},
        ).first()
    if row is None:
        return None
    return decrypt(master_key, bytes(row[0]))
