"""A test OIDC issuer: a real HTTP server on 127.0.0.1 serving a Keycloak-shaped realm.

It serves `{issuer}/.well-known/openid-configuration` and
`{issuer}/protocol/openid-connect/certs` (the JWKS), and mints RS256 tokens with its key.
Tokens signed by other keys, or forged in other ways, are built here too, for the 401 tests.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REALM_PATH = "/realms/afasa"
AUDIENCE = "afasa-api"


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk


@dataclass
class OidcIssuer:
    port: int
    key: rsa.RSAPrivateKey = field(default_factory=new_rsa_key)
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    jwks_requests: int = 0
    # Failure modes of the JWKS endpoint: a raw body instead of the keys (b"[1,2]"), an
    # HTTP status, and a delay before answering (a hanging issuer).
    jwks_body: bytes | None = None
    jwks_status: int = 200
    jwks_delay_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{REALM_PATH}"

    @property
    def jwks_url(self) -> str:
        return self.url + "/protocol/openid-connect/certs"

    @property
    def private_pem(self) -> str:
        return private_pem(self.key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.kid)]}

    def claims(
        self,
        tenant_id: uuid.UUID | str | None,
        roles: list[str] | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": f"user-{uuid.uuid4().hex[:8]}",
            "iat": now,
            "exp": now + 300,
            "realm_access": {"roles": roles if roles is not None else ["tenant_admin"]},
        }
        if tenant_id is not None:
            claims["tenant_id"] = str(tenant_id)
        claims.update(overrides)
        return claims

    def token(
        self,
        tenant_id: uuid.UUID | str | None,
        roles: list[str] | None = None,
        **overrides: Any,
    ) -> str:
        return jwt.encode(
            self.claims(tenant_id, roles, **overrides),
            self.key,
            algorithm="RS256",
            headers={"kid": self.kid},
        )

    def token_signed_by(self, other: rsa.RSAPrivateKey, tenant_id: uuid.UUID | str) -> str:
        """Same kid, wrong key: a bad signature."""
        return jwt.encode(
            self.claims(tenant_id), other, algorithm="RS256", headers={"kid": self.kid}
        )

    def unsigned_token(self, tenant_id: uuid.UUID | str) -> str:
        """alg: none, no signature."""
        return jwt.encode(self.claims(tenant_id), None, algorithm="none")  # type: ignore[arg-type]

    def auth(self, tenant_id: uuid.UUID | str, roles: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant_id, roles)}"}


def _handler(issuer: OidcIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == REALM_PATH + "/protocol/openid-connect/certs":
                issuer.jwks_requests += 1
                if issuer.jwks_delay_s:
                    time.sleep(issuer.jwks_delay_s)
                if issuer.jwks_body is not None or issuer.jwks_status != 200:
                    self._raw(issuer.jwks_status, issuer.jwks_body or b"{}")
                else:
                    self._json(issuer.jwks())
            elif self.path == REALM_PATH + "/.well-known/openid-configuration":
                self._json(
                    {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.jwks_url,
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                )
            else:
                self.send_error(404)

        def _json(self, body: dict[str, Any]) -> None:
            self._raw(200, json.dumps(body).encode())

        def _raw(self, status: int, data: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (hanging-issuer tests)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def running_issuer() -> Iterator[OidcIssuer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(OidcIssuer(0)))
    issuer = OidcIssuer(int(server.server_address[1]))
    server.RequestHandlerClass = _handler(issuer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
