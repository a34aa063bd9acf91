"""Minting bearer tokens for the functional checks: HS256 (development) or RS256 (a PEM key)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from afasa_ops.redact import redactor


def mint_token(
    key: str,
    *,
    issuer: str,
    audience: str,
    subject: str,
    tenant_id: str,
    roles: list[str],
    kid: str | None = None,
    ttl_s: int = 600,
) -> str:
    """An RS256 token when key is a PEM private key, else an HS256 token; taught to the redactor."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "tenant_id": tenant_id,
        "realm_access": {"roles": roles},
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if key.lstrip().startswith("-----BEGIN"):
        headers = {"kid": kid} if kid else None
        token = jwt.encode(claims, key, algorithm="RS256", headers=headers)
    else:
        token = jwt.encode(claims, key, algorithm="HS256")
    redactor.add(token)
    return token
