"""Every process reaches PostgreSQL through one engine factory (infra/postgres.make_engine):
`serve` and the workers get the [database] connect and lock timeouts and their own statement
timeouts (api_/worker_statement_timeout_s) on every connection, and the DSN's password is taught to the redactor before anything can print it.
Before, platform/db.py built their engines with no timeout and no redaction."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from afasa_ops.config import load_settings
from afasa_ops.redact import redactor
from tests.support.platform_db import PlatformDb


def with_password(dsn: str, password: str) -> str:
    scheme, rest = dsn.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def session_settings(engine: object) -> tuple[str, str, str]:
    from sqlalchemy import Engine, text

    assert isinstance(engine, Engine)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),"
                " current_setting('application_name')"
            )
        ).one()
    return str(row[0]), str(row[1]), str(row[2])


@pytest.fixture
def config(tmp_path: Path, pdb: PlatformDb, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AFASA_TEST_FACTORY_DSN", pdb.app_dsn)
    monkeypatch.setenv("AFASA_TEST_FACTORY_SECRET", "factory-secret-0123456789abcdef0123")
    path = tmp_path / "afasa-ops.toml"
    path.write_text(
        f'[repo]\npath = "{tmp_path}"\n'
        '[database]\napp_dsn = { env = "AFASA_TEST_FACTORY_DSN" }\n'
        "api_statement_timeout_s = 7\nworker_statement_timeout_s = 7\nlock_timeout_s = 3\n"
        '[api]\nenvironment = "development"\n'
        'dev_hs256_secret = { env = "AFASA_TEST_FACTORY_SECRET" }\n'
    )
    return path


def test_the_workers_engine_has_the_configured_timeouts(config: Path) -> None:
    from afasa_ops.workers.setup import app_engine

    engine = app_engine(load_settings(config))
    try:
        assert session_settings(engine) == ("7s", "3s", "afasa-ops-worker")
    finally:
        engine.dispose()


def test_the_api_engine_has_the_configured_timeouts(config: Path) -> None:
    from afasa_ops.api.runtime import build_runtime

    runtime = build_runtime(load_settings(config))
    try:
        assert session_settings(runtime.engine) == ("7s", "3s", "afasa-ops-api")
    finally:
        runtime.close()


def test_the_factory_teaches_the_redactor_the_password(pdb: PlatformDb) -> None:
    from afasa_ops.infra.postgres import make_engine

    # Trust authentication ignores the password; the redactor must still never print it.
    password = "pw-" + secrets.token_hex(8)
    assert password in redactor.redact(password)
    engine = make_engine(with_password(pdb.app_dsn, password), pool_size=1)
    try:
        assert session_settings(engine)[2] == "afasa-ops"
    finally:
        engine.dispose()
    assert password not in redactor.redact(f"connecting with {password}")
