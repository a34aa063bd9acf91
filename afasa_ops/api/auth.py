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
# The JWKS is fetched at most this often (an unknown kid, a failing issuer); each failure in a
# row doubles the wait, up to 5 minutes.
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


class JwksError(Exception):
    """The issuer's keys could not be fetched or used; the message is one line."""


def fetch_jwks(url: str, timeout_s: float) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS document by kid, or JwksError saying why not."""
    try:
        with http.translated(f"GET {url}", timeout_s):
            response = http.request("GET", url, timeout_s=timeout_s)
            response.raise_for_status()
        doc = response.json()
    except http.HttpFailure as exc:
        reason = f"no answer within {timeout_s:g}s" if exc.timed_out else exc.reason
        raise JwksError(reason) from None
    except ValueError as exc:
        raise JwksError(type(exc).__name__) from None
    # JSON that is not an object ([1,2], a string, null) is as unusable as a 500.
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JwksError("the JWKS document is not an object with a keys list")
    try:
        keys = jwt.PyJWKSet.from_dict(doc).keys
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise JwksError(type(exc).__name__) from None
    return {k.key_id or "": k for k in keys if k.public_key_use in (None, "sig")}


class JwksCache:
    """The issuer's signing keys by kid, fetched over HTTP and kept for a while.

    A request never waits for a refresh while a cached key fits its token: the refresh runs in
    one background thread and the request goes on with the key it has. Only a request the
    cache cannot serve (no keys yet, or an unknown kid during a rotation) waits, for the one
    fetch in flight and at most its timeout. Fetches start at most once per interval, longer
    after each failure, however many requests arrive while the issuer is down.
    """

    def __init__(
        self,
        url: str,
        ttl_s: float,
        timeout_s: float = 3.0,
        min_interval_s: float = REFETCH_MIN_INTERVAL_S,
    ) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.min_interval_s = min_interval_s
        self.fetches = 0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._failures = 0
        self._last_error = "no fetch yet"
        self._inflight: threading.Event | None = None
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            now = time.monotonic()
            found = self._match(kid)
            stale = self._fetched_at is None or now - self._fetched_at > self.ttl_s
            inflight = self._refresh_soon(now) if stale or found is None else None
        if found is not None:
            return found
        if inflight is not None:
            inflight.wait(self.timeout_s + 1.0)
        with self._lock:
            found = self._match(kid)
            have_keys = bool(self._keys)
            error = self._last_error
        if found is not None:
            return found
        if not have_keys:
            raise AuthError(401, f"cannot use the issuer's keys: {error}")
        raise AuthError(401, "token signed by an unknown key")

    def _match(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid or "")

    def _refresh_soon(self, now: float) -> threading.Event | None:
        """The fetch in flight, a new one, or None while the rate limit holds (under lock)."""
        if self._inflight is not None:
            return self._inflight
        wait = min(self.min_interval_s * 2 ** max(self._failures - 1, 0), 300.0)
        if self._attempted_at is not None and now - self._attempted_at < wait:
            return None
        self._attempted_at = now
        self.fetches += 1
        done = threading.Event()
        self._inflight = done
        threading.Thread(
            target=self._refresh, args=(done,), name="jwks-refresh", daemon=True
        ).start()
        return done

    def _refresh(self, done: threading.Event) -> None:
        try:
            keys = fetch_jwks(self.url, self.timeout_s)
        except JwksError as exc:
            with self._lock:
                # The keys we have stay in use: the issuer may be restarting.
                self._failures += 1
                self._last_error = str(exc)
        else:
            with self._lock:
                self._keys = keys
                self._fetched_at = time.monotonic()
                self._failures = 0
                self._last_error = "ok"
        finally:
            with self._lock:
                self._inflight = None
            done.set()


class TokenVerifier:
    def __init__(self, api: ApiSection) -> None:
        self.audience = api.audience
        self.issuer = api.oidc_issuer_url.rstrip("/") if api.oidc_issuer_url else None
        url = jwks_url_of(api)
        # RS256 only with an issuer to check the tokens against.
        self.jwks = (
            JwksCache(url, api.jwks_cache_s, api.jwks_timeout_s) if url and self.issuer else None
        )
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
        raise ConfigError(f"[api] dev_hs256_secret - {api.dev_hs256_secret.problem()}")
    redactor.add(secret)
    return secret


def build_verifier(api: ApiSection) -> TokenVerifier:
    check_auth_config(api)
    return TokenVerifier(api)
