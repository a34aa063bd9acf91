"""Authentication and authorization of the reference service, with a real OIDC issuer (JWKS
over HTTP) and the real database and NATS behind it."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from afasa_ops.api.runtime import build_runtime
from afasa_ops.config import load_settings
from afasa_ops.errors import ConfigError
from tests.support.api_stack import MASTER_KEY, ROOT, ApiStack, add_device, api_stack
from tests.support.oidc_issuer import new_rsa_key


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_MASTER_KEY_BASE64", MASTER_KEY)
        with api_stack(tmp_path_factory.mktemp("api-auth")) as s:
            yield s


def _bad_tokens(stack: ApiStack) -> dict[str, str]:
    iss, tenant = stack.issuer, stack.tenant_a
    now = int(time.time())
    return {
        "expired": iss.token(tenant, exp=now - 120, iat=now - 600),
        "wrong_audience": iss.token(tenant, aud="another-api"),
        "wrong_issuer": iss.token(tenant, iss="http://127.0.0.1:1/realms/evil"),
        "bad_signature": iss.token_signed_by(new_rsa_key(), tenant),
        "alg_none": iss.unsigned_token(tenant),
        "missing_tenant_id": iss.token(None),
        "tenant_not_uuid": iss.token("farm-a"),
        # HS256 signed with the issuer's public key: the classic key-confusion forgery.
        "hs256_with_public_key": jwt.encode(
            iss.claims(tenant), iss.jwks()["keys"][0]["n"], algorithm="HS256"
        ),
        "garbage": "not.a.jwt",
    }


BAD = [
    "expired",
    "wrong_audience",
    "wrong_issuer",
    "bad_signature",
    "alg_none",
    "missing_tenant_id",
    "tenant_not_uuid",
    "hs256_with_public_key",
    "garbage",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_tokens_get_401(stack: ApiStack, case: str) -> None:
    token = _bad_tokens(stack)[case]
    response = stack.client.get("/api/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (case, response.text)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert token not in response.text


def test_missing_or_malformed_header_gets_401(stack: ApiStack) -> None:
    assert stack.client.get("/api/devices").status_code == 401
    basic = {"Authorization": "Basic dXNlcjpwdw=="}
    assert stack.client.get("/api/devices", headers=basic).status_code == 401
    assert stack.client.post("/api/report/generate", json={}).status_code == 401


def test_valid_token_is_accepted(stack: ApiStack) -> None:
    response = stack.client.get("/api/devices", headers=stack.auth(stack.tenant_a))
    assert response.status_code == 200
    assert response.json() == {"devices": []} or "devices" in response.json()


def test_non_admin_gets_403_on_enable_disable_and_sync(stack: ApiStack) -> None:
    device = add_device(stack.db.admin_dsn, stack.tenant_a, "auth-403")
    viewer = stack.auth(stack.tenant_a, roles=["viewer"])
    for path in (
        f"/api/devices/{device}/enable",
        f"/api/devices/{device}/disable",
        f"/api/tb/devices/{device}/disable",
        "/api/discovery/ubibot/sync",
        "/api/tb/integrations/ubibot/sync",
    ):
        response = stack.client.post(path, headers=viewer)
        assert response.status_code == 403, (path, response.text)
        assert "tenant_admin" in response.json()["detail"]
    # A viewer still reads; the device was not touched.
    assert stack.client.get(f"/api/devices/{device}", headers=viewer).status_code == 200
    admin = stack.auth(stack.tenant_a)
    assert stack.client.post(f"/api/devices/{device}/enable", headers=admin).status_code == 202


def test_dev_hs256_refused_outside_development(tmp_path: Path, stack: ApiStack) -> None:
    base = (stack.settings.source).read_text()
    config = tmp_path / "prod.toml"
    config.write_text(base + 'dev_hs256_secret = { env = "AFASA_TEST_DEV_SECRET" }\n')
    with pytest.raises(ConfigError, match="refused outside development"):
        build_runtime(load_settings(config))
    # Through the real CLI: one line, exit 2, and the service never listens.
    proc = subprocess.run(
        [sys.executable, "-m", "afasa_ops", "--config", str(config), "serve", "--port", "9"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"AFASA_TEST_DEV_SECRET": "s3cret-dev-value-0123456789abcdef", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: [api] dev_hs256_secret"), lines
    assert "s3cret-dev-value" not in proc.stderr


def test_dev_hs256_accepted_only_in_development(tmp_path: Path, stack: ApiStack) -> None:
    from fastapi.testclient import TestClient

    from afasa_ops.api.app import create_app

    base = stack.settings.source.read_text().replace('oidc_issuer_url = "', '# "')
    config = tmp_path / "dev.toml"
    config.write_text(
        base + 'environment = "development"\ndev_hs256_secret = { env = "AFASA_TEST_DEV_SECRET" }\n'
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_TEST_DEV_SECRET", "dev-secret-for-tests-0123456789abcdef")
        runtime = build_runtime(load_settings(config))
    claims = stack.issuer.claims(stack.tenant_a)
    claims["iss"] = "afasa-dev"
    good = jwt.encode(claims, "dev-secret-for-tests-0123456789abcdef", algorithm="HS256")
    wrong = jwt.encode(claims, "another-secret-0123456789abcdef0123", algorithm="HS256")
    with TestClient(create_app(runtime)) as client:
        ok = client.get("/api/devices", headers={"Authorization": f"Bearer {good}"})
        assert ok.status_code == 200, ok.text
        bad = client.get("/api/devices", headers={"Authorization": f"Bearer {wrong}"})
        assert bad.status_code == 401
        # No OIDC issuer configured: RS256 tokens are not accepted in this mode.
        rs = client.get("/api/devices", headers=stack.auth(stack.tenant_a))
        assert rs.status_code == 401


def test_no_issuer_and_no_dev_mode_refuses_to_start(tmp_path: Path, stack: ApiStack) -> None:
    base = stack.settings.source.read_text().replace('oidc_issuer_url = "', '# "')
    config = tmp_path / "none.toml"
    config.write_text(base)
    with pytest.raises(ConfigError, match="oidc_issuer_url is not set"):
        build_runtime(load_settings(config))


def test_unknown_kid_refetches_jwks_once(stack: ApiStack) -> None:
    before = stack.issuer.jwks_requests
    claims = stack.issuer.claims(stack.tenant_a)
    token = jwt.encode(
        claims, stack.issuer.key, algorithm="RS256", headers={"kid": uuid.uuid4().hex}
    )
    response = stack.client.get("/api/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "unknown key" in response.json()["detail"]
    assert stack.issuer.jwks_requests <= before + 1
