"""Bearer JWT verification: RS256 against the OIDC issuer's JWKS, HS256 only in development.

The verifier is built once at startup from [api]; a configuration that would accept
development tokens in production refuses to build (the service does not start). Every
rejection is a 401 with a short reason; the reason never echoes the token.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from afasa_ops.config import ApiSection
from afasa_ops.errors import ConfigError
from afasa_ops.infra import http
from afasa_ops.redact import redactor
from afasa_ops.tokens import DEV_ISSUER, check_auth_config

ADMIN_ROLE = "tenant_admin"
# Clock skew tolerated on exp/nbf/iat, in seconds.
LEEWAY_S = 30
# A token with an unknown kid refetches the JWKS at most this often (key rotation).
REFETCH_MIN_INTERVAL_S = 10.0


class AuthError(Exception):
    """A request is not authenticated (401) or not allowed (403)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: uuid.UUID
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def require_admin(self) -> None:
        if not self.is_admin:
            raise AuthError(403, f"the {ADMIN_ROLE} role is required")


def jwks_url_of(api: ApiSection) -> str | None:
    if api.jwks_url:
        return api.jwks_url
    if api.oidc_issuer_url:
        return api.oidc_issuer_url.rstrip("/") + "/protocol/openid-connect/certs"
    return None


class JwksCache:
    """The issuer's signing keys by kid, fetched over HTTP and kept for a while."""

    def __init__(self, url: str, ttl_s: float, timeout_s: float = 5.0) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> jwt.PyJWK:
        now = time.monotonic()
        with self._lock:
            stale = now - self._fetched_at > self.ttl_s
            unknown = kid not in self._keys and now - self._fetched_at > REFETCH_MIN_INTERVAL_S
            if stale or unknown:
                self._refresh()
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            found = self._keys.get(kid or "")
        if found is None:
            raise AuthError(401, "token signed by an unknown key")
        return found

    def _refresh(self) -> None:
        try:
            with http.translated(f"GET {self.url}", self.timeout_s):
                response = http.request("GET", self.url, timeout_s=self.timeout_s)
                response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (http.HttpFailure, ValueError, jwt.PyJWTError) as exc:
            if self._keys:
                return  # keep serving with the keys we have; the issuer may be restarting
            reason = exc.reason if isinstance(exc, http.HttpFailure) else type(exc).__name__
            raise AuthError(401, f"cannot fetch the issuer's keys: {reason}") from exc
        self._keys = {k.key_id or "": k for k in keys if k.public_key_use in (None, "sig")}
        self._fetched_at = time.monotonic()


class TokenVerifier:
    def __init__(self, api: ApiSection) -> None:
        self.audience = api.audience
        self.issuer = api.oidc_issuer_url.rstrip("/") if api.oidc_issuer_url else None
        url = jwks_url_of(api)
        # RS256 only with an issuer to check the tokens against.
        self.jwks = JwksCache(url, api.jwks_cache_s) if url and self.issuer else None
        self.dev_secret = _dev_secret(api)

    def verify(self, authorization: str | None) -> Principal:
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(401, "malformed token") from exc
        alg = header.get("alg")
        # The key is chosen by alg, and each alg has exactly one key source, so an RS256
        # public key can never be used as an HS256 secret.
        if alg == "RS256" and self.jwks is not None:
            key: Any = self.jwks.key(header.get("kid"))
            issuer = self.issuer
        elif alg == "HS256" and self.dev_secret is not None:
            key = self.dev_secret
            issuer = self.issuer or DEV_ISSUER
        else:
            raise AuthError(401, f"token algorithm {alg!r} is not accepted")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(401, "token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(401, "token audience is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(401, "token issuer is not accepted") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError(401, "token signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"invalid token: {exc}") from exc
        return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    raw_tenant = claims.get("tenant_id")
    if not raw_tenant:
        raise AuthError(401, "token has no tenant_id claim")
    try:
        tenant = uuid.UUID(str(raw_tenant))
    except ValueError as exc:
        raise AuthError(401, "token tenant_id is not a UUID") from exc
    realm = claims.get("realm_access") or {}
    roles = realm.get("roles") if isinstance(realm, dict) else None
    return Principal(
        subject=str(claims["sub"]),
        tenant_id=tenant,
        roles=frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
    )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthError(401, "missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "Authorization must be 'Bearer <token>'")
    return token.strip()


def _dev_secret(api: ApiSection) -> str | None:
    if api.dev_hs256_secret is None:
        return None
    secret = api.dev_hs256_secret.get()
    if not secret:
        raise ConfigError(
            f"[api] dev_hs256_secret points at {api.dev_hs256_secret.describe()}, which is empty"
        )
    redactor.add(secret)
    return secret


def build_verifier(api: ApiSection) -> TokenVerifier:
    check_auth_config(api)
    return TokenVerifier(api)
