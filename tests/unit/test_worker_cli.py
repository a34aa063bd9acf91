"""`afasa-ops worker ...` refuses bad configuration with one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "afasa-ops.toml"
    cfg.write_text('[repo]\npath = "."\n' + body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFASA_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "afasa_ops", "--config", str(cfg), "worker", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_worker_without_app_dsn_says_what_to_set(tmp_path: Path) -> None:
    proc = run(tmp_path, "", "report", "--port", "0")
    assert proc.returncode == 2
    assert "[database] app_dsn is not set" in proc.stderr
    assert "set AFASA_OPS_DATABASE_APP_DSN" in proc.stderr


def test_worker_with_a_bad_storage_url_names_it(tmp_path: Path) -> None:
    body = '[database]\napp_dsn = "postgresql://nobody@127.0.0.1:1/x"\n[storage]\nurl = "ftp://x"\n'
    proc = run(tmp_path, body, "report", "--port", "0")
    assert proc.returncode == 2 and "[storage] url 'ftp://x': unsupported scheme" in proc.stderr


def test_sync_without_any_key_source_is_a_config_error(tmp_path: Path) -> None:
    proc = run(
        tmp_path, '[database]\napp_dsn = "postgresql://nobody@127.0.0.1:1/x"\n', "sync", "--once"
    )
    assert proc.returncode == 2 and "AFASA_MASTER_KEY_BASE64" in proc.stderr


def test_worker_concurrency_below_one_is_refused(tmp_path: Path) -> None:
    body = '[database]\napp_dsn = "postgresql://nobody@127.0.0.1:1/x"\n'
    proc = run(tmp_path, body, "commands", "--concurrency", "0", "--port", "0")
    assert proc.returncode == 2 and "--concurrency 0" in proc.stderr
