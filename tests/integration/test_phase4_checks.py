"""Phase 4 as shipped in the afasa-repair runbook, run by the real runner against
`afasa-ops serve` (a subprocess on loopback) and the workers, over PostgreSQL and NATS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from afasa_ops.config import Settings, load_settings
from afasa_ops.render.junit import render_junit
from afasa_ops.runbook.context import Context, Options
from afasa_ops.runbook.loader import load_runbook
from afasa_ops.runbook.model import RunResult, Status
from afasa_ops.runbook.runner import Runner, Selection
from tests.support.api_stack import (
    ROOT,
    ApiDb,
    Process,
    add_device,
    add_tenant,
    admin_rows,
    new_port,
    worker_process,
)
from tests.support.oidc_issuer import OidcIssuer
from tests.support.ops_platform import SERVICE_ENV, afasa_ops_services, running_platform

DEFAULT_TENANT = uuid.UUID("00000000-0000-0000-0000-000000000001")


@dataclass
class Deployment:
    db: ApiDb
    settings: Settings
    serve: Process
    issuer: OidcIssuer
    tmp: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """`afasa-ops serve` for the default tenant, with a UbiBot key and four channels; the
    tests start the workers they want."""
    tmp = tmp_path_factory.mktemp("phase4")
    with running_platform(tmp, channels=4) as platform:
        add_tenant(platform.db.admin_dsn, "demo farm", DEFAULT_TENANT)
        platform.store_ubibot_key(DEFAULT_TENANT)
        port = new_port()
        config = platform.config(
            "afasa-ops",
            port,
            f"http://127.0.0.1:{port}",
            sections=f'[runbook]\npath = "{ROOT / "afasa_ops/data/runbooks/afasa-repair.yaml"}"',
            checks="timeout_s = 30\npoll_max_s = 0.3",
        )
        with afasa_ops_services(platform, config, port) as serve:
            yield Deployment(platform.db, load_settings(config), serve, platform.issuer, tmp)


def run_phase4(settings: Settings, only: str | None = None) -> RunResult:
    ctx = Context(settings, Options(yes=True))
    runner = Runner(load_runbook(settings.runbook_path()), ctx)
    return runner.run(Selection(["phase4"], only_step=only))


def _evidence(result: RunResult, step: str) -> list[str]:
    found = next(s for s in result.steps if s.id == step)
    return [f.message for f in found.findings]


def _touched(result: RunResult, check: str) -> list[str]:
    found = next(s for s in result.steps if s.id == f"phase4.check.{check}")
    return list(found.artifacts.get("touched", []))


def test_phase4_checks_pass_against_serve_and_workers(deployment: Deployment) -> None:
    config = deployment.settings.source
    assert config is not None
    workers = [
        worker_process(config, kind, deployment.tmp / f"worker-{kind}.log", SERVICE_ENV)
        for kind in ("report", "commands")
    ]
    commands_before = _command_rows(deployment)
    try:
        result = run_phase4(deployment.settings)
    finally:
        for w in workers:
            w.stop()
    statuses = {s.id: (s.status, s.summary) for s in result.steps}
    assert result.status == "ok", (statuses, deployment.serve.logs()[-2000:])
    assert set(statuses) == {
        "phase4.check.ubibot_sync",
        "phase4.check.device_disable",
        "phase4.check.report_async",
    }
    assert all(s.verification and s.status == Status.OK for s in result.steps)
    # (A) the request, an excerpt of the answer and the SQL with its rows are all reported.
    a = _evidence(result, "phase4.check.ubibot_sync")
    assert any(m.startswith("POST /api/tb/integrations/ubibot/sync -> 200") for m in a)
    assert any("devices_found" in m and '"inserted":4' in m for m in a)
    assert any("FROM devices WHERE provider = 'ubibot'" in m and "300000" in m for m in a)
    # (B) disabled, recorded, completed by the worker, then restored.
    b = _evidence(result, "phase4.check.device_disable")
    assert any("/disable -> 202" in m for m in b)
    assert any("device_commands" in m and "completed" in m for m in b)
    # ...the worker applied the restore before its command row went, as the disable's did.
    restored = [t for t in _touched(result, "device_disable") if "restore_applied" in t]
    assert restored and "true" in restored[0], _touched(result, "device_disable")
    for name in ("delete_restore_command", "delete_disable_command"):
        assert any(f"{name} (cleanup)" in t for t in _touched(result, "device_disable"))
    # No command row of the check is left: the same rows as before the run.
    assert _command_rows(deployment) == commands_before
    # (C) queued, ready before the deadline, and the object is in storage.
    c = _evidence(result, "phase4.check.report_async")
    assert any("/api/report/generate" in m and "-> 202" in m for m in c)
    assert any(m.startswith("object tenant/") and "exists" in m for m in c)
    # ...and then cleaned up: no report row, no object left; the device enabled again.
    assert not list((deployment.tmp / "storage").rglob("*.pdf"))
    assert admin_rows(deployment.db.admin_dsn, "SELECT count(*) FROM reports", ()) == [(0,)]
    assert any("delete_report (cleanup)" in t for t in _touched(result, "report_async"))
    assert any("restore (cleanup)" in t for t in _touched(result, "device_disable"))
    assert admin_rows(
        deployment.db.admin_dsn, "SELECT bool_and(desired_enabled) FROM devices", ()
    ) == [(True,)]
    # All three are test cases in the JUnit output, with their evidence.
    junit = render_junit(result)
    assert junit.count("<testcase") == 3
    assert "phase4.check.report_async" in junit and "/api/report/generate" in junit
    # No token in the evidence.
    assert "eyJ" not in junit


def test_report_check_fails_at_its_deadline_without_the_report_worker(
    deployment: Deployment,
) -> None:
    text = deployment.settings.source.read_text().replace("timeout_s = 30", "timeout_s = 3")  # type: ignore[union-attr]
    config = deployment.tmp / "short.toml"
    config.write_text(text)
    result = run_phase4(load_settings(config), only="phase4.check.report_async")
    step = result.steps[0]
    assert result.status == "failed"
    assert step.status == Status.FAILED
    assert "ready" in step.summary and "attempts" in step.summary
    assert any(f.code == "check.failed" for f in step.findings)
    assert any("queued" in f.message for f in step.findings)
    # Failed midway, it still deleted the report row it had made.
    assert admin_rows(deployment.db.admin_dsn, "SELECT count(*) FROM reports", ()) == [(0,)]
    assert any("delete_report (cleanup)" in t for t in _touched(result, "report_async"))


def test_device_check_failing_midway_leaves_no_command_rows(deployment: Deployment) -> None:
    """No commands worker: the disable is never completed, the check fails at its deadline,
    and its cleanup still restores the device and deletes both command rows it made (the
    worker would never apply a deleted command)."""
    text = deployment.settings.source.read_text().replace("timeout_s = 30", "timeout_s = 2")  # type: ignore[union-attr]
    config = deployment.tmp / "short-device.toml"
    config.write_text(text)
    other = _other_command(deployment)
    before = _command_rows(deployment)
    result = run_phase4(load_settings(config), only="phase4.check.device_disable")
    step = result.steps[0]
    assert step.status == Status.FAILED, step.summary
    assert "command_completed" in step.summary
    touched = _touched(result, "device_disable")
    assert any("restore (cleanup)" in t for t in touched), touched
    assert any("delete_disable_command (cleanup)" in t and "requested" in t for t in touched)
    assert any("delete_restore_command (cleanup)" in t for t in touched), touched
    assert not [f for f in step.findings if f.code == "check.cleanup_failed"], step.findings
    after = _command_rows(deployment)
    assert after == before and other in after
    assert admin_rows(
        deployment.db.admin_dsn, "SELECT bool_and(desired_enabled) FROM devices", ()
    ) == [(True,)]


def _command_rows(deployment: Deployment) -> list[tuple[object, ...]]:
    return admin_rows(
        deployment.db.admin_dsn, "SELECT id, command, status FROM device_commands ORDER BY id", ()
    )


def _other_command(deployment: Deployment) -> object:
    """A command row the check did not make: it must stay. (A device first, when this test
    runs without the sync of the first one.)"""
    if not admin_rows(deployment.db.admin_dsn, "SELECT 1 FROM devices", ()):
        add_device(deployment.db.admin_dsn, DEFAULT_TENANT, "midway-1")
    rows = admin_rows(
        deployment.db.admin_dsn,
        "INSERT INTO device_commands (tenant_id, device_id, command, status, requested_by) "
        "SELECT tenant_id, id, 'disable', 'completed', 'someone else' FROM devices LIMIT 1 "
        "RETURNING id, command, status",
        (),
    )
    return rows[0]


def test_checks_refuse_to_run_without_credentials(deployment: Deployment, tmp_path: Path) -> None:
    text = deployment.settings.source.read_text()  # type: ignore[union-attr]
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("token_signing_key"))
    config = tmp_path / "nocreds.toml"
    config.write_text(text + "\n")
    result = run_phase4(load_settings(config), only="phase4.check.ubibot_sync")
    assert result.status in ("blocked", "failed")
    assert "token" in result.steps[0].summary
