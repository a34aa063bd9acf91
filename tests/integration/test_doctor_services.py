"""`afasa-ops doctor services` against real services: the AFASA-shaped stubs
(compose/stubs/, run as a real process) are found by their effects, afasa-ops' own API and
workers are not, and without --probe-writes nothing is written.

Everything is real: PostgreSQL (a migrated database), a private NATS JetStream server, the
stub process, `afasa-ops serve` and the workers as processes, the CLI as a process. The
UbiBot cloud is the only double."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api_stack import (
    ROOT,
    ApiDb,
    Process,
    add_device,
    add_tenant,
    admin_rows,
    new_port,
)
from tests.support.ops_platform import (
    UBIBOT_KEY,
    Platform,
    afasa_ops_services,
    running_platform,
)

PROBE_STEPS = (
    "doctor.services.stub_sync",
    "doctor.services.stub_device_state",
    "doctor.services.sync_report",
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("doctor-services"), channels=3) as platform:
        yield platform


def config_for(p: Platform, name: str, base_url: str, tenant: uuid.UUID, port: int) -> Path:
    return p.config(name, port, base_url, tenant=tenant)


def doctor_services(config: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "afasa_ops",
            "--config",
            str(config),
            "doctor",
            "services",
            "--json",
            *flags,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=180,
    )
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def probe_steps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in doc["steps"] if s["id"] in PROBE_STEPS}


def codes(step: dict[str, Any]) -> list[str]:
    return [f["code"] for f in step["findings"]]


def counts(db: ApiDb, tenant: uuid.UUID) -> dict[str, int]:
    return {
        table: admin_rows(
            db.admin_dsn, f"SELECT count(*) FROM {table} WHERE tenant_id=%s", (tenant,)
        )[0][0]
        for table in ("devices", "device_commands", "reports", "event_outbox")
    }


@pytest.fixture
def stubs(platform: Platform) -> Iterator[tuple[str, Path]]:
    """compose/stubs' tb-adapter and report, both route tables on one port (`all`)."""
    port = new_port()
    log = platform.tmp / f"stubs-{port}.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "compose" / "stubs"),
        "STUB_HOST": "127.0.0.1",
        "STUB_PORT": str(port),
        "UBIBOT_BASE_URL": platform.ubibot.base_url,
        "UBIBOT_ACCOUNT_KEY": UBIBOT_KEY,
        "NATS_URL": platform.nats.url,
        "REPORT_RENDER_S": "0.2",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "afasa_stub", "all"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    stub = Process([], log)
    stub.proc = proc  # type: ignore[assignment]
    try:
        stub.wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", log
    finally:
        stub.stop()


def test_the_stubs_are_found_by_their_effects(platform: Platform, stubs: tuple[str, Path]) -> None:
    base_url, log = stubs
    tenant = add_tenant(platform.db.admin_dsn, "stubbed farm")
    device = add_device(platform.db.admin_dsn, tenant, "stub-1")
    before = counts(platform.db, tenant)
    config = config_for(platform, "stubbed", base_url, tenant, new_port())

    code, doc = doctor_services(config, "--probe-writes")

    steps = probe_steps(doc)
    sync = steps["doctor.services.stub_sync"]
    assert sync["status"] == "pending" and codes(sync) == ["service.stub_sync"], sync
    finding = sync["findings"][0]
    assert finding["data"]["route"] == "/api/tb/integrations/ubibot/sync"
    assert any("-> 200" in e and "devices_found" in e for e in finding["data"]["evidence"])
    assert any("1 device rows are unchanged" in e for e in finding["data"]["evidence"])
    # The stub really did ask UbiBot: it iterates the channels, it just saves nothing.
    assert "sync: channel 300000" in log.read_text()

    state = steps["doctor.services.stub_device_state"]
    assert codes(state) == ["service.stub_device_state"], state
    evidence = " ".join(state["findings"][0]["data"]["evidence"])
    assert state["findings"][0]["data"]["route"] == f"/api/tb/devices/{device}/disable"
    assert "desired_enabled still true and no command row" in evidence

    report = steps["doctor.services.sync_report"]
    assert codes(report) == ["service.sync_report"], report
    evidence = " ".join(report["findings"][0]["data"]["evidence"])
    assert "answered 200 with the result, not 202" in evidence
    assert "no afasa.report.requested event" in evidence
    # Its subscriber is there, on the real NATS, and only logs.
    assert "nats: subscribed to afasa.report.requested" in log.read_text()
    # Stubs found are pending (adopting afasa-ops' services fixes them: exit 3); here the
    # compose health step is blocked too (no Compose project), and blocked wins: exit 4.
    healthy = next(s for s in doc["steps"] if s["id"] == "doctor.services.healthy")
    assert healthy["status"] == "blocked" and code == 4, (healthy, code)
    # The stubs changed nothing, and the probes had nothing to restore.
    assert counts(platform.db, tenant) == before
    desired = admin_rows(
        platform.db.admin_dsn, "SELECT desired_enabled FROM devices WHERE id=%s", (device,)
    )
    assert desired == [(True,)]


def test_without_probe_writes_nothing_is_written_or_called(
    platform: Platform, stubs: tuple[str, Path]
) -> None:
    base_url, log = stubs
    tenant = add_tenant(platform.db.admin_dsn, "careful farm")
    add_device(platform.db.admin_dsn, tenant, "careful-1")
    before = counts(platform.db, tenant)
    requests_before = len(platform.ubibot.requests)
    config = config_for(platform, "careful", base_url, tenant, new_port())

    _, doc = doctor_services(config)

    steps = probe_steps(doc)
    assert set(steps) == set(PROBE_STEPS)
    for step in steps.values():
        assert step["status"] == "skipped", step
        assert step["summary"].endswith("run only with --probe-writes"), step
        assert not codes(step)
    assert "UbiBot sync" in steps["doctor.services.stub_sync"]["summary"]
    assert counts(platform.db, tenant) == before
    assert len(platform.ubibot.requests) == requests_before
    assert "POST" not in log.read_text()  # the stubs saw no request at all


@pytest.fixture
def afasa_ops_api(platform: Platform) -> Iterator[tuple[Path, uuid.UUID, int]]:
    """afasa-ops' own API and its report and commands workers, for one tenant with a UbiBot
    key of its own."""
    tenant = add_tenant(platform.db.admin_dsn, "working farm")
    platform.store_ubibot_key(tenant)
    port = new_port()
    config = config_for(platform, "working", f"http://127.0.0.1:{port}", tenant, port)
    with afasa_ops_services(platform, config, port, workers=("report", "commands")):
        yield config, tenant, port


def test_afasa_ops_own_services_are_not_stubs_and_the_probes_restore(
    platform: Platform, afasa_ops_api: tuple[Path, uuid.UUID, int]
) -> None:
    config, tenant, _ = afasa_ops_api
    device = add_device(platform.db.admin_dsn, tenant, "kept-1")
    devices_before = admin_rows(
        platform.db.admin_dsn,
        "SELECT id, name, desired_enabled, synced_at FROM devices WHERE tenant_id=%s ORDER BY id",
        (tenant,),
    )

    _, doc = doctor_services(config, "--probe-writes")

    steps = probe_steps(doc)
    for step in steps.values():
        assert step["status"] == "ok", step
        assert codes(step) == ["service.working"], step
    sync = steps["doctor.services.stub_sync"]["findings"][0]["data"]
    assert any("3 inserted" in e for e in sync["evidence"]), sync
    assert any("deleted 3 of 3 device rows" in r for r in sync["restored"]), sync
    state = steps["doctor.services.stub_device_state"]["findings"][0]["data"]
    assert any("desired_enabled true -> false" in e for e in state["evidence"]), state
    assert "desired_enabled back to true" in state["restored"], state
    assert "deleted the 2 command row(s) the probe created" in state["restored"], state
    report = steps["doctor.services.sync_report"]["findings"][0]["data"]
    assert any("-> 202" in e for e in report["evidence"]), report
    assert any("afasa.report.requested seen" in e for e in report["evidence"]), report
    # What the probes changed is back: the same device rows, the device enabled again, and
    # the disable and enable the worker applied leave no command row.
    devices_after = admin_rows(
        platform.db.admin_dsn,
        "SELECT id, name, desired_enabled, synced_at FROM devices WHERE tenant_id=%s ORDER BY id",
        (tenant,),
    )
    assert devices_after == devices_before
    commands = admin_rows(
        platform.db.admin_dsn,
        "SELECT command FROM device_commands WHERE device_id=%s ORDER BY requested_at",
        (device,),
    )
    assert commands == []


def test_the_device_probe_deletes_commands_no_worker_applied(platform: Platform) -> None:
    """Without a commands worker the probe's disable and enable stay `requested`: nothing was
    applied, so both rows go (a worker never applies a deleted command)."""
    tenant = add_tenant(platform.db.admin_dsn, "farm without a commands worker")
    platform.store_ubibot_key(tenant)
    device = add_device(platform.db.admin_dsn, tenant, "idle-1")
    port = new_port()
    config = config_for(platform, "idle", f"http://127.0.0.1:{port}", tenant, port)
    with afasa_ops_services(platform, config, port, workers=("report",)):
        _, doc = doctor_services(config, "--probe-writes")
    state = probe_steps(doc)["doctor.services.stub_device_state"]["findings"][0]["data"]
    assert "deleted the 2 command row(s) the probe created" in state["restored"], state
    left = admin_rows(
        platform.db.admin_dsn, "SELECT command FROM device_commands WHERE device_id=%s", (device,)
    )
    assert left == []
    enabled = admin_rows(
        platform.db.admin_dsn, "SELECT desired_enabled FROM devices WHERE id=%s", (device,)
    )
    assert enabled == [(True,)]


def test_a_probe_that_cannot_judge_says_so_and_blocks(
    platform: Platform, afasa_ops_api: tuple[Path, uuid.UUID, int]
) -> None:
    """A tenant without a UbiBot key: afasa-ops' sync refuses it (409), so there is no
    effect to judge by: inconclusive, blocked, with the answer as evidence, nothing written."""
    _, _, port = afasa_ops_api
    tenant = add_tenant(platform.db.admin_dsn, "farm without a key")
    before = counts(platform.db, tenant)
    config = config_for(platform, "nokey", f"http://127.0.0.1:{port}", tenant, port)

    code, doc = doctor_services(config, "--probe-writes")

    sync = probe_steps(doc)["doctor.services.stub_sync"]
    assert sync["status"] == "blocked", sync
    assert codes(sync) == ["service.probe_inconclusive"], sync
    evidence = sync["findings"][0]["data"]["evidence"]
    assert any("-> 409" in e for e in evidence), evidence
    assert "nothing to judge by effects" in " ".join(evidence)
    assert code == 4
    after = counts(platform.db, tenant)
    assert after["devices"] == before["devices"] == 0


def test_a_working_sync_on_an_up_to_date_registry_is_not_called_a_stub(
    platform: Platform, afasa_ops_api: tuple[Path, uuid.UUID, int]
) -> None:
    """A converged deployment: the registry already holds every UbiBot channel, so the sync
    changes no row. The probe marks one device's name and syncs again: afasa-ops' sync puts
    UbiBot's name back (working), and the probe puts the row's columns back."""
    import urllib.request

    config, tenant, port = afasa_ops_api
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/tb/integrations/ubibot/sync",
        method="POST",
        headers={"Authorization": f"Bearer {platform.issuer.token(tenant)}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read())["devices_found"] == 3
    query = "SELECT id, name, metadata, synced_at, last_seen_at FROM devices WHERE tenant_id=%s"
    synced = sorted(admin_rows(platform.db.admin_dsn, query, (tenant,)))
    assert len(synced) == 3

    _, doc = doctor_services(config, "--probe-writes")

    sync = probe_steps(doc)["doctor.services.stub_sync"]
    assert sync["status"] == "ok" and codes(sync) == ["service.working"], sync
    data = sync["findings"][0]["data"]
    assert any("rows are unchanged" in e for e in data["evidence"]), data
    assert any("put UbiBot's name back" in e for e in data["evidence"]), data
    assert any("columns put back" in r for r in data["restored"]), data
    assert sorted(admin_rows(platform.db.admin_dsn, query, (tenant,))) == synced
