"""The whole runbook on the reference stack: from a git repo in its "before" state with an
existing database volume made by the init SQL, `run all` repairs everything; a rerun changes
nothing; the report holds it all; `rollback` restores the before state. With Compose v1 and
v2 (tests/e2e/test_mixed_compose.py: a stack started by one, converged by the other)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack, start_before_state, traefik_routers

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(1500)]

PHASES = ("phase0", "phase1", "phase2", "phase3", "phase4")


@pytest.mark.parametrize("compose_pair", ["v1", "v2"], indirect=True)
def test_run_all_repairs_reruns_clean_reports_and_rolls_back(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    start_before_state(stack)
    before_head = stack.git("rev-parse", "HEAD")
    before_compose = (stack.repo / "docker-compose.yml").read_text()
    # The database volume exists and was made by the init SQL (seed tenant, no devices table).
    assert stack.sql("SELECT name FROM tenants") == "demo farm"
    assert stack.sql("SELECT to_regclass('public.devices') IS NULL") == "t"

    code, doc = stack.ops_json("run", "all", "--yes", timeout=1200)
    steps = [(s["id"], s["status"], s["summary"]) for s in doc["steps"]]
    assert code == 0 and doc["status"] == "ok", (doc["message"], steps, doc.get("incident"))
    ran = {s["phase"] for s in doc["steps"]}
    assert set(PHASES) <= ran, steps
    status = {s["id"]: s["status"] for s in doc["steps"]}
    changed = {s for s, v in status.items() if v == "changed"}
    # phase0: the rollback tag and the fix branch.
    assert any(s.startswith("phase0.git.tag") for s in changed), steps
    assert any(s.startswith("phase0.git.branch") for s in changed), steps
    tags = stack.git("tag", "--list", "pre-audit-*").split()
    assert len(tags) == 1 and stack.git("rev-parse", f"{tags[0]}^{{commit}}") == before_head
    assert stack.git("rev-parse", "--abbrev-ref", "HEAD").startswith("fix/robust-audit-")
    # phase1: Traefik pinned and routing through the docker provider.
    assert {"phase1.traefik.pin", "phase1.traefik.recreate"} <= changed, steps
    assert stack.image_of("traefik") == "traefik:v3.6.7"
    routers = {r["name"]: r for r in traefik_routers(stack)}
    assert {"tb-adapter@docker", "report@docker"} <= set(routers)
    # phase2: afasa-ops' services adopted the stubbed routes (no zip), AFASA's stay.
    assert "phase2.services.adopt" in changed, steps
    assert (stack.repo / "docker-compose.afasa-ops.yml").is_file()
    assert "docker-compose.afasa-ops.yml" in (stack.repo / ".env").read_text()
    moved = {n for n in routers if n.startswith("afasa-ops-")}
    assert "afasa-ops-report-generate@docker" in moved and len(moved) == 7, sorted(routers)
    assert routers["afasa-ops-devices@docker"]["service"] == "afasa-ops-api"
    assert routers["tb-adapter@docker"]["service"] == "tb-adapter"
    # phase2: migrations applied over a connection on the existing volume, RLS enforced.
    assert any(s.startswith("phase2.") for s in changed), steps
    assert stack.sql("SELECT to_regclass('public.devices') IS NOT NULL") == "t"
    assert stack.sql("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'devices'") == "t"
    assert (
        stack.sql("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'afasa_app'")
        == "f"
    )
    # phase3: every service healthy; phase4: the functional checks passed.
    assert set(stack.box.health().values()) == {"healthy"}, stack.box.health()
    checks = [s for s in doc["steps"] if s["phase"] == "phase4"]
    assert checks and all(s["status"] in ("ok", "changed") for s in checks), steps
    # Through Traefik, the repaired routes are answered by afasa-ops (202, not the stub's
    # 200); a route afasa-ops does not take still reaches AFASA's stub.
    assert any("-> 202" in f["message"] for c in checks for f in c["findings"]), checks
    stub_log = stack.logs("tb-adapter")
    assert "POST /api/tb/integrations/ubibot/sync" not in stub_log, stub_log[-2000:]
    assert "/disable" not in stub_log, stub_log[-2000:]
    stack.get("http", "/api/integrations/e2e-untouched")
    assert "GET /api/integrations/e2e-untouched -> 404" in stack.logs("tb-adapter")
    assert any(s["verification"] for s in checks), steps
    assert stack.git("status", "--porcelain") == ""

    # A second run on the converged stack changes nothing and says so.
    code, again = stack.ops_json("run", "all", "--yes", timeout=900)
    assert code == 0 and again["status"] == "ok", again["message"]
    assert [s["status"] for s in again["steps"] if s["status"] == "changed"] == [], [
        (s["id"], s["summary"]) for s in again["steps"] if s["status"] == "changed"
    ]
    assert again["message"].startswith("nothing changed"), again["message"]

    # The report of the first run: what changed (diffs, commits), what was tested and how,
    # what passed; as Markdown for people and JSON/JUnit for machines.
    first = doc["run_id"]
    report = stack.ops("report", first, "--format", "md")
    assert report.returncode == 0, report.stderr
    md = report.stdout
    for heading in ("## What changed", "## What was tested", "## Passed", "## Failed"):
        assert heading in md, heading
    for phase in PHASES:
        assert f"| {phase}." in md, phase
    assert "+    image: traefik:v3.6.7" in md  # the compose diff
    assert f"as {tags[0]}" in md  # the rollback tag
    assert "0002_devices.sql" in md  # the migrations applied
    # Which routes moved to which service.
    assert (
        "| afasa-ops-report-generate | `Method(`POST`) && Path(`/api/report/generate`)` | afasa-ops-api |"
        in md
    )
    for check in checks:
        assert f"| {check['id']} | ok |" in md, check["id"]
    junit = stack.ops("report", first, "--format", "junit")
    assert junit.returncode == 0 and "<testsuite" in junit.stdout
    assert 'failures="0"' in junit.stdout
    as_json = json.loads(stack.ops("report", first, "--format", "json").stdout)
    assert as_json["run_id"] == first and as_json["status"] == "ok"
    for secret in stack.secret_values():
        assert secret not in md and secret not in junit.stdout

    # Rollback: the before state's files as a new commit, Traefik recreated as found.
    code, back = stack.ops_json("rollback", "--yes")
    assert code == 0, back
    assert (stack.repo / "docker-compose.yml").read_text() == before_compose
    assert stack.git("diff", tags[0], "HEAD", "--stat") == ""
    assert stack.image_of("traefik") == "traefik:v3.6.0"
    # The override went with the rollback: its containers are gone, the stubs route again.
    assert not (stack.repo / "docker-compose.afasa-ops.yml").exists()
    assert "docker-compose.afasa-ops.yml" not in (stack.repo / ".env").read_text()
    assert not any("afasa-ops-" in n for n in stack.names()), stack.names()
    assert sorted(back["removed"]) == [
        "afasa-ops-api",
        "afasa-ops-worker-commands",
        "afasa-ops-worker-report",
        "afasa-ops-worker-sync",
    ]
    # The project is AFASA's as found again: its stubs hold every route (the rolled-back
    # Traefik v3.6.0 itself is refused by Docker 29 again, so nothing is routed through it).
    services = set(stack.box.compose("config", "--services").stdout.split())
    assert {"tb-adapter", "report"} <= services and not any("afasa-ops" in s for s in services)
    assert stack.box.health().get("tb-adapter") == "healthy", stack.box.health()
