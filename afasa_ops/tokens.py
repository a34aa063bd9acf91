"""Bearer-token rules shared by the HTTP service (api/) and its functional checks (steps/):
which [api] settings are coherent, the development issuer, and minting tokens: HS256
(development) or RS256 (a PEM key)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from afasa_ops.config import ApiSection
from afasa_ops.errors import ConfigError
from afasa_ops.redact import redactor

# Issuer of development tokens when no OIDC issuer is configured.
DEV_ISSUER = "afasa-dev"


def check_auth_config(api: ApiSection) -> None:
    """Refuse to start with a configuration that would accept tokens it should not."""
    if api.dev_hs256_secret is not None and api.environment != "development":
        raise ConfigError(
            "[api] dev_hs256_secret is set but [api] environment is "
            f"{api.environment!r}: HS256 development tokens are refused outside development",
            hint='remove dev_hs256_secret, or set [api] environment = "development"',
        )
    if api.dev_hs256_secret is None and api.oidc_issuer_url is None:
        raise ConfigError(
            "[api] oidc_issuer_url is not set: no way to verify tokens",
            hint="set AFASA_OPS_API_OIDC_ISSUER_URL or [api] oidc_issuer_url to the Keycloak realm URL",
        )


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
