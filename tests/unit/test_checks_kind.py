"""The functional check kind as data: parameters validated on load, JSON paths, templating,
and plan staying read-only (no request leaves)."""

from __future__ import annotations

from pathlib import Path

import pytest

from afasa_ops.config import load_settings
from afasa_ops.errors import ConfigError, RunbookError
from afasa_ops.runbook.context import Context
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.model import Status
from afasa_ops.runbook.runner import Runner, Selection
from afasa_ops.steps.check import CheckFailed, CheckRunner, json_path, resolve_token
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_json_path_subset() -> None:
    data = {"devices": [{"id": "d1", "tags": ["a", "b"]}], "n": 0}
    assert json_path(data, "$.devices[0].id") == "d1"
    assert json_path(data, "$.devices[0].tags[1]") == "b"
    assert json_path(data, "$.n") == 0
    assert json_path(data, "$.devices[3].id") is None
    assert json_path(data, "$.missing.deeper") is None
    with pytest.raises(ConfigError):
        json_path(data, "devices")


def _settings(tmp_path: Path, extra: str = ""):  # type: ignore[no-untyped-def]
    config = tmp_path / "afasa-ops.toml"
    config.write_text(
        f'[repo]\npath = "{tmp_path}"\n[runbook]\npath = "{ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"}"\n'
        f'[checks]\nbase_url = "http://127.0.0.1:{free_port()}"\n' + extra
    )
    return load_settings(config)


def test_config_routes_and_captures_fill_paths(tmp_path: Path) -> None:
    runner = CheckRunner(_settings(tmp_path))
    try:
        runner.vars["device_id"] = "abc"
        assert runner.fill("{disable_route}") == "/api/tb/devices/abc/disable"
        assert runner.fill_obj({"t": ["{tenant_id}"]}) == {
            "t": ["00000000-0000-0000-0000-000000000001"]
        }
        with pytest.raises(CheckFailed, match="report_id"):
            runner.fill("{report_route}")
    finally:
        runner.close()


def test_plan_of_phase4_is_read_only(tmp_path: Path) -> None:
    # base_url is a closed port: any request would fail the step; plan must not send one.
    settings = _settings(tmp_path)
    runbook = load_runbook(settings.runbook_path())
    result = Runner(runbook, Context(settings)).plan(Selection(["phase4"]))
    assert [s.status for s in result.steps] == [Status.WILL_RUN] * 3
    assert result.status == "ok"  # checks only verify: nothing pending
    assert "POST {sync_route}" in result.steps[0].summary


def test_read_only_mode_skips_checks_that_change_the_deployment(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 'mode = "read-only"\n')
    runbook = load_runbook(settings.runbook_path())
    result = Runner(runbook, Context(settings)).plan(Selection(["phase4"]))
    assert [s.status for s in result.steps] == [Status.SKIPPED] * 3
    assert all("read-only" in s.summary for s in result.steps)
    assert "disable: POST {disable_route}" in result.steps[1].summary


def test_an_action_with_two_kinds_is_refused_on_load(tmp_path: Path) -> None:
    path = tmp_path / "rb.yaml"
    path.write_text(
        "name: t\nphases:\n  - id: phase4\n    title: t\n    steps:\n"
        "      - id: bad\n        kind: check.functional\n        title: bad\n"
        "        params:\n          actions:\n            - name: both\n"
        "              request: {path: /x}\n              sql: {query: SELECT 1}\n"
    )
    with pytest.raises(RunbookError, match="exactly one of request, sql, storage"):
        load_runbook(path)


def test_token_minting_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token"):
        resolve_token(_settings(tmp_path))


def test_minted_hs256_token_verifies_with_the_service_verifier(tmp_path: Path) -> None:
    from afasa_ops.api.auth import build_verifier

    settings = _settings(
        tmp_path,
        '[api]\nenvironment = "development"\ndev_hs256_secret = { env = "AFASA_T_DEV" }\n',
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFASA_T_DEV", "a-development-secret-of-32-bytes!!")
        token = resolve_token(settings)
        principal = build_verifier(settings.api).verify(f"Bearer {token}")
    assert str(principal.tenant_id) == settings.checks.tenant_id
    assert principal.is_admin
