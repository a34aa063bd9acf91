"""Configuration: the shipped file, overrides, validation errors and the secret rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from afasa_ops.config import SecretRef, Settings, load_settings, secret_value, section_classes
from afasa_ops.errors import ConfigError
from afasa_ops.redact import redactor

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "afasa-ops.toml"
    path.write_text(text)
    return path


def test_the_shipped_config_is_valid() -> None:
    settings = load_settings(ROOT / "afasa-ops.toml", environ={})
    assert settings.repo_path == (ROOT / "examples" / "afasa").resolve()
    assert settings.runbook_path().exists()


def test_every_key_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for name, cls in section_classes().items():
        assert f"[{name}]" in doc, name
        for key in cls.model_fields:
            assert f"`{key}`" in doc, f"[{name}] {key}"
    assert "[[services]]" in doc


def test_env_overrides_win_and_parse_lists(tmp_path: Path) -> None:
    path = write(tmp_path, '[repo]\npath = "."\n[nats]\nurl = "nats://a:4222"\n')
    env = {
        "AFASA_OPS_NATS_URL": "nats://b:4222",
        "AFASA_OPS_COMPOSE_FILES": "a.yml,b.yml",
        "AFASA_OPS_DATABASE_ADMIN_DSN": "postgresql://u:env-pass-1@h/db",
    }
    settings = load_settings(path, environ=env)
    assert settings.nats.url == "nats://b:4222"
    assert settings.compose.files == ["a.yml", "b.yml"]
    assert secret_value(settings.database.admin_dsn) == "postgresql://u:env-pass-1@h/db"
    assert "env-pass-1" not in redactor.redact("connect postgresql://u:env-pass-1@h/db")


def test_secret_references_resolve_from_env_and_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-a-file\n")
    path = write(
        tmp_path,
        f'[repo]\npath = "."\n[database]\napp_password = {{ file = "{secret_file}" }}\n'
        '[storage]\nsecret_key = { env = "S3_SECRET" }\n',
    )
    settings = load_settings(path, environ={})
    assert isinstance(settings.database.app_password, SecretRef)
    assert settings.database.app_password.get() == "from-a-file"
    assert "from-a-file" not in redactor.redact("pw is from-a-file")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[repo]\npath = "."\n[nats]\nurll = "x"\n',
            "unknown key [nats] urll; valid keys in [nats]: url, stream",
        ),
        (
            '[repo]\npath = "."\n[nats]\nurl = 5\n',
            "[nats] url: input should be a valid string (got 5)",
        ),
        ('[nats]\nurl = "x"\n', "missing required key [repo]"),
        ('[repo]\npath = "."\n[bogus]\nx = 1\n', "unknown key [bogus]"),
        (
            '[repo]\npath = "."\n[storage]\nsecret_key = "abc"\n',
            "[storage] secret_key is a secret and may not be written inline",
        ),
        (
            '[repo]\npath = "."\n[database]\nadmin_dsn = "postgresql://u:hunter22@h/db"\n',
            "[database] admin_dsn holds a password",
        ),
        ("[repo\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert expected in message, message
    assert "\n" not in message
    assert "hunter22" not in message


def test_inline_secret_error_says_how_to_reference(tmp_path: Path) -> None:
    path = write(tmp_path, '[repo]\npath = "."\n[database]\napp_password = "pw123456"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert 'app_password = { env = "NAME" }' in str(err.value)
    assert "AFASA_OPS_DATABASE_APP_PASSWORD" in str(err.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AFASA_OPS_NOPE_X", "AFASA_OPS_NOPE_X: no such section"),
        ("AFASA_OPS_NATS_URLX", "AFASA_OPS_NATS_URLX: [nats] has no key 'urlx'"),
    ],
)
def test_bad_env_override(tmp_path: Path, name: str, expected: str) -> None:
    path = write(tmp_path, '[repo]\npath = "."\n')
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_settings(path, environ={name: "v"})


def test_cli_exits_2_on_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[repo]\npath = "."\n[nats]\nurll = "x"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "afasa_ops", "--config", str(path), "plan"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown key [nats] urll" in proc.stderr


def test_missing_config_file_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="afasa-ops init"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_settings_has_the_fixed_interface() -> None:
    fields = {s: set(c.model_fields) for s, c in section_classes().items()}
    assert "path" in fields["repo"]
    assert {"files", "project_name"} <= fields["compose"]
    assert "host" in fields["docker"]
    assert {"admin_dsn", "app_dsn"} <= fields["database"]
    for section in ("nats", "storage"):
        assert "url" in fields[section]
    for section in ("ubibot", "thingsboard"):
        assert "base_url" in fields[section]
    assert "services" in Settings.model_fields
