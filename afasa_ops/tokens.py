"""Bearer-token rules shared by the HTTP service (api/) and its functional checks (steps/):
which [api] settings are coherent, the development issuer, and minting tokens: HS256
(development) or RS256 (a PEM key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

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
        # PyJWT (and cryptography under it) only for RS256: HS256 needs the standard library.
        import jwt

        headers = {"kid": kid} if kid else None
        token = jwt.encode(claims, key, algorithm="RS256", headers=headers)
    else:
        token = _hs256(claims, key)
    redactor.add(token)
    return token


def _hs256(claims: dict[str, Any], key: str) -> str:
    """A compact JWS signed with HMAC-SHA256 (RFC 7515/7518), as PyJWT writes it: a header
    {"alg":"HS256","typ":"JWT"}, JSON without spaces, base64url without padding."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    def compact(doc: dict[str, Any]) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()

    signing_input = b64(compact({"alg": "HS256", "typ": "JWT"})) + b"." + b64(compact(claims))
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()
