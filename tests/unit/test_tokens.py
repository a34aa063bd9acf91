"""Development (HS256) tokens are minted with the standard library, and are the tokens PyJWT
would write and accepts; RS256 still goes through PyJWT."""

from __future__ import annotations

from pathlib import Path

import jwt

from afasa_ops.tokens import mint_token
from tests.support.fresh_python import imported_by

ROOT = Path(__file__).resolve().parents[2]
SECRET = "dev-secret-0123456789abcdef0123456789abcdef"


def test_an_hs256_token_is_the_one_pyjwt_writes_and_verifies() -> None:
    token = mint_token(
        SECRET,
        issuer="afasa-dev",
        audience="afasa-api",
        subject="afasa-ops-checks",
        tenant_id="t-1",
        roles=["tenant_admin"],
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="afasa-api")
    assert claims["iss"] == "afasa-dev" and claims["tenant_id"] == "t-1"
    assert claims["realm_access"] == {"roles": ["tenant_admin"]}
    assert claims["exp"] - claims["iat"] == 600
    assert token == jwt.encode(claims, SECRET, algorithm="HS256")
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_a_wrong_secret_does_not_verify() -> None:
    token = mint_token(SECRET, issuer="i", audience="a", subject="s", tenant_id="t", roles=[])
    try:
        jwt.decode(token, SECRET + "x", algorithms=["HS256"], audience="a")
    except jwt.InvalidSignatureError:
        return
    raise AssertionError("a token signed with another secret verified")


def test_minting_an_hs256_token_imports_neither_pyjwt_nor_cryptography() -> None:
    code = (
        "from afasa_ops.tokens import mint_token\n"
        f"mint_token({SECRET!r}, issuer='i', audience='a', subject='s', tenant_id='t', roles=[])\n"
    )
    assert imported_by(code, ("jwt", "cryptography"))[0] == []
