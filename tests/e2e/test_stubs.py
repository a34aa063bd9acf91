"""AFASA as found: the reference stack's stubbed services (compose/stubs/) built and run by
Compose on the real engine, routed by the real Traefik through their own prefix rules, and
found by `doctor services --probe-writes` through Traefik, by effects; with a patch bundle
configured, `auto` leaves the routes to the operators' code."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack, start_before_state, traefik_routers

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(900)]


def test_doctor_services_finds_the_stubs_through_traefik(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    # AFASA as found: infrastructure, the stand-ins and the two stubs (no afasa-ops).
    start_before_state(stack)
    assert not any("afasa-ops" in n for n in stack.names())
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

    # With the operators' bundle configured, `auto` adopts nothing and says why.
    (stack.box.root / "ops-bundle").mkdir()
    config = stack.box.config
    config.write_text(config.read_text() + '\n[patch]\nbundle = "ops-bundle"\n')
    _, plan = stack.ops_json("plan", "phase2")
    adopt = next(s for s in plan["steps"] if s["id"] == "phase2.services.adopt")
    assert adopt["status"] == "ok" and "patch bundle" in adopt["summary"], adopt
    assert not (stack.repo / "docker-compose.afasa-ops.yml").exists()
