"""AFASA as found, stubs included: the reference stack's `stubs` profile (compose/stubs/)
built and run by Compose on the real engine, routed by the real Traefik through their own
prefix rules, and found by `doctor services --probe-writes` through Traefik, by effects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import INFRA, Stack, traefik_routers

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(900)]

STUBS = ("tb-adapter", "report")
AFASA_OPS_SERVICES = ("api", "worker-report", "worker-sync", "worker-commands")


def afasa_as_found(repo: Path) -> None:
    """The checkout as AFASA ships it: its stubbed services, none of afasa-ops'. (Here, for
    this test only; switching the reference stack's before state is the adoption's work.)"""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.width = 4096  # never fold a long flow sequence (healthcheck commands)
    yaml.preserve_quotes = True
    path = repo / "docker-compose.yml"
    doc = yaml.load(path.read_text())
    for name in AFASA_OPS_SERVICES:
        del doc["services"][name]
    for name in STUBS:
        del doc["services"][name]["profiles"]
    with path.open("w") as out:
        yaml.dump(doc, out)


def test_doctor_services_finds_the_stubs_through_traefik(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(before_commit=afasa_as_found)
    # AFASA as found: infrastructure, the UbiBot stand-in and the two stubs (no afasa-ops).
    stack.box.up(*INFRA, "ubibot", timeout=180)
    stack.box.compose("up", "-d", "--build", *STUBS)
    stack.box.wait_healthy(*STUBS, timeout=180)
    code, doc = stack.ops_json("run", "phase1", "--yes")  # Traefik repaired: routes work
    assert code == 0, (doc["message"], [(s["id"], s["status"]) for s in doc["steps"]])
    stack.wait(
        "Traefik to route the stubs",
        lambda: (
            {"tb-adapter@docker", "report@docker"} <= {r["name"] for r in traefik_routers(stack)}
        ),
    )
    rules = {r["name"]: r["rule"] for r in traefik_routers(stack)}
    assert rules["report@docker"] == "PathPrefix(`/api/report`)"
    assert "PathPrefix(`/api/discovery`)" in rules["tb-adapter@docker"]

    code, doc = stack.ops_json("doctor", "services", "--probe-writes")

    found = {
        f["code"]: f
        for s in doc["steps"]
        if s["id"].startswith("doctor.services.")
        for f in s["findings"]
    }
    assert {"service.stub_sync", "service.stub_device_state", "service.sync_report"} <= set(
        found
    ), found
    # Through Traefik to the stubs: the before state has no devices table at all.
    sync = " ".join(found["service.stub_sync"]["data"]["evidence"])
    assert "-> 200" in sync and "no devices table" in sync, sync
    assert "/disable" in found["service.stub_device_state"]["data"]["route"]
    report = " ".join(found["service.sync_report"]["data"]["evidence"])
    assert "answered 200 with the result" in report and "no afasa.report.requested" in report
    assert code == 3, doc["message"]  # stubs are pending changes; nothing blocked
    assert "sync: channel" in stack.logs("tb-adapter")  # it did read UbiBot's channels
    assert "nats: subscribed to afasa.report.requested" in stack.logs("report")
    assert stack.sql("SELECT to_regclass('devices') IS NULL") == "t"
